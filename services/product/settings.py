"""Settings of the product service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from services import topology
from services.kit import DatabaseSettings


class Settings(DatabaseSettings):
    service_name: str = "product"
    port: int = Field(topology.dev_port("product"), ge=1, le=65535)
    # gRPC Inventory listens on HOST:GRPC_PORT.
    grpc_port: int = Field(topology.GRPC_PORT, ge=1, le=65535)
    # How long a duplicate Reserve waits for the first call with the same order id to finish.
    reserve_wait_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.grpc_port == self.port:
            raise ValueError(f"GRPC_PORT and PORT must differ (both are {self.port})")
        return self
