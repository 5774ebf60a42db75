"""Settings of the shipping service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from services import topology
from services.kit import DatabaseSettings, TokenSettings


class Settings(DatabaseSettings, TokenSettings):
    service_name: str = "shipping"
    port: int = Field(topology.dev_port("shipping"), ge=1, le=65535)
    # A shipment is `shipped` this long after creation and `delivered` after DELIVER_AFTER_SECONDS.
    ship_after_seconds: float = Field(20.0, ge=0)
    deliver_after_seconds: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        if self.deliver_after_seconds < self.ship_after_seconds:
            raise ValueError("DELIVER_AFTER_SECONDS must not be smaller than SHIP_AFTER_SECONDS")
        return self
