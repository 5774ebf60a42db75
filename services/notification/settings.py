"""Settings of the notification service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field

from services import topology
from services.kit import DatabaseSettings, TokenSettings


class Settings(DatabaseSettings, TokenSettings):
    service_name: str = "notification"
    port: int = Field(topology.dev_port("notification"), ge=1, le=65535)
