"""user settings: the kit's common variables plus the address limit."""

from __future__ import annotations

from pydantic import Field

from services import topology
from services.kit import DatabaseSettings, TokenSettings


class Settings(DatabaseSettings, TokenSettings):
    service_name: str = "user"
    port: int = Field(topology.dev_port("user"), ge=1, le=65535)
    max_addresses: int = Field(20, ge=1, le=100)
