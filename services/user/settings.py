"""user settings: the kit's common variables plus the address limit."""

from __future__ import annotations

from pydantic import Field

from services.kit import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "user"
    port: int = Field(8082, ge=1, le=65535)
    max_addresses: int = Field(20, ge=1, le=100)
