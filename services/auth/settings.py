"""auth settings: the kit's common variables plus the signing key, admins, token lifetimes and throttling."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services import topology
from services.kit import DatabaseSettings


class Settings(DatabaseSettings):
    service_name: str = "auth"
    port: int = Field(topology.dev_port("auth"), ge=1, le=65535)

    # The RS256 signing key: a PEM file (a mounted Secret in the cluster) or PEM text.
    # Neither set = dev mode: a key is generated at start and tokens do not survive a restart.
    jwt_private_key_file: str | None = None
    jwt_private_key: SecretStr | None = None
    # Comma separated; these accounts get group `admin` in their tokens.
    admin_emails: str = ""

    access_token_ttl_seconds: int = Field(15 * 60, ge=30, le=24 * 3600)
    # The shop's services that may get their own token (OAuth 2.0 client credentials grant):
    # `<client id>=<secret>,...`, generated at deploy time (services/auth/clients.py).
    oauth_clients: SecretStr | None = None
    service_token_ttl_seconds: int = Field(5 * 60, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)

    # Failed logins per account: this many failures within the window lock the account for lockout_seconds.
    login_max_failures: int = Field(5, ge=1)
    login_failure_window_seconds: int = Field(5 * 60, ge=1)
    login_lockout_seconds: int = Field(5 * 60, ge=1)

    @property
    def admin_email_set(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())
