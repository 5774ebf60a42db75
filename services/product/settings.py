"""Settings of the product service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field

from services.kit import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "product"
    port: int = Field(default=8083, ge=1, le=65535)
    # gRPC Inventory listens on HOST:GRPC_PORT.
    grpc_port: int = Field(default=9000, ge=1, le=65535)
    # How long a duplicate Reserve waits for the first writer of the same order id to finish.
    reserve_wait_seconds: float = Field(default=5.0, gt=0)
