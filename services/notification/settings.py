"""Settings of the notification service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field

from services.kit import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "notification"
    port: int = Field(8087, ge=1, le=65535)
