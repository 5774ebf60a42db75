"""Settings of the order service (env vars, docs/architecture.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services import topology
from services.kit import DatabaseSettings, TokenSettings


class Settings(DatabaseSettings, TokenSettings):
    service_name: str = "order"
    port: int = Field(topology.dev_port("order"), ge=1, le=65535)
    # A duplicate checkout (same Idempotency-Key) waits this long for the first one to finish.
    checkout_wait_seconds: float = Field(20.0, gt=0)
    # A checkout whose process died is taken over by a retry after this long (every step is idempotent).
    checkout_lease_seconds: float = Field(60.0, gt=0)
    # The neighbours order calls (docs/architecture.md, "Who calls whom"); the cluster sets http://<name>:3000.
    auth_url: str = topology.dev_url("auth")
    product_url: str = topology.dev_url("product")
    product_grpc_target: str = topology.dev_grpc_target()
    payment_url: str = topology.dev_url("payment")
    shipping_url: str = topology.dev_url("shipping")
    notification_url: str = topology.dev_url("notification")
    # Settling open checkouts (services/order/settle.py): a checkout nobody finishes (its process died, or
    # payment's answer was lost and the shopper did not retry) is taken over this long after its lease ran
    # out (the grace leaves a shopper's retry the first go); the loop looks every SETTLE_POLL_SECONDS, and
    # a settle that a dependency outage interrupts is tried again SETTLE_RETRY_SECONDS later.
    settle_grace_seconds: float = Field(10.0, ge=0)
    settle_poll_seconds: float = Field(1.0, gt=0)
    settle_retry_seconds: float = Field(5.0, gt=0)
    # Parcel weight per unit when a product has no `weight_grams`.
    default_weight_grams: int = Field(500, ge=1)
    # Order's own identity at auth (OAuth 2.0 client credentials, services/kit/service_identity.py), for
    # what order does on its own behalf: refunds and payment lookups (payment answers those to order only).
    # The secret is generated at deploy time (scripts/secrets.sh, `make dev`); unset, refunds fail.
    # Following shipments (services/order/tracking.py): how often the background loop looks for orders
    # due for a look, and the longest wait between two looks at one shipment.
    track_poll_seconds: float = Field(1.0, gt=0)
    track_interval_seconds: float = Field(30.0, gt=0)
    oauth_client_id: str = "order"
    oauth_client_secret: SecretStr | None = None
