"""Settings of the payment service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field

from services import topology
from services.kit import DatabaseSettings, TokenSettings


class Settings(DatabaseSettings, TokenSettings):
    service_name: str = "payment"
    port: int = Field(topology.dev_port("payment"), ge=1, le=65535)
    # Fault knobs for the mesh labs (like Bookinfo's faulty builds): share of API requests answered
    # 503 `simulated_failure` before anything happens, and a delay added to every API request.
    failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    delay_ms: int = Field(0, ge=0, le=120_000)
    # External-provider mode: charges go to POST {PROVIDER_URL}/v1/charges instead of the simulator.
    provider_url: str | None = None
    # How long a duplicate charge waits for the first request of the same order to finish.
    duplicate_wait_seconds: float = Field(10.0, gt=0)
    # A charge stuck in `processing` this long (its process died) may be taken over by a retry.
    stale_after_seconds: float = Field(30.0, gt=0)
