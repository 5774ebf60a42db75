"""Frontend settings: the variant shown in the banner and the secret that signs CSRF tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from services import topology
from services.kit import TokenSettings

Variant = Literal["stable", "mobile-optimized", "beta-features"]


class Settings(TokenSettings):
    service_name: str = "frontend"
    port: int = Field(topology.dev_port("frontend"), ge=1, le=65535)

    # The neighbours the frontend calls (docs/architecture.md, "Who calls whom"); the cluster sets
    # http://<name>:3000.
    auth_url: str = topology.dev_url("auth")
    user_url: str = topology.dev_url("user")
    product_url: str = topology.dev_url("product")
    order_url: str = topology.dev_url("order")
    notification_url: str = topology.dev_url("notification")
    # Which A/B variant this deployment is (the mesh routes users to one of them).
    variant: Variant = "stable"
    # Signs the CSRF tokens. Unset: a random one per process (fine for one dev process only).
    session_secret: SecretStr | None = None
    # Mark the session cookies `Secure` (set when the shop is served over HTTPS).
    cookie_secure: bool = False
    # Lifetime of the refresh-token cookie; the auth service decides whether the token is still valid.
    refresh_cookie_days: int = Field(7, ge=1, le=90)
    page_size: int = Field(12, ge=1, le=100)
    # How long the catalog page reuses product's category list (the seed catalog's: it changes only with a
    # deploy). The product list itself is asked for on every page (stock, and which product version answers
    # for the banner). 0: ask on every page.
    categories_cache_seconds: float = Field(30.0, ge=0, le=3600)
