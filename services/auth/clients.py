"""The shop's services as OAuth 2.0 clients: who may get a service token (client credentials grant).

`OAUTH_CLIENTS` lists them as `<client id>=<secret>` pairs, comma separated (`order=3f9c...`). The
secrets are generated at deploy time (scripts/secrets.sh, `make dev`), never committed. Unset: no
service can get a token (auth logs it at start).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from services.kit.deps import app_state
from services.kit.serve import ConfigurationError

CLIENT_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
MIN_SECRET_LENGTH = 32
# Compared against when the client id is unknown, so an unknown id costs the same as a wrong secret.
_DUMMY = secrets.token_hex(32)


class ClientsError(ConfigurationError, ValueError):
    """OAUTH_CLIENTS is malformed; the message says which entry (never the secret)."""


@dataclass(frozen=True)
class ServiceClients:
    secrets: dict[str, str]

    @classmethod
    def parse(cls, raw: SecretStr | None) -> ServiceClients:
        found: dict[str, str] = {}
        text = raw.get_secret_value() if raw is not None else ""
        for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), start=1):
            client_id, sep, secret = entry.partition("=")
            client_id = client_id.strip()
            if not sep or not CLIENT_ID.match(client_id):
                raise ClientsError(f"OAUTH_CLIENTS entry {position}: expected <client id>=<secret>")
            if len(secret.strip()) < MIN_SECRET_LENGTH:
                raise ClientsError(f"OAUTH_CLIENTS: the secret of {client_id!r} has under 32 characters")
            if client_id in found:
                raise ClientsError(f"OAUTH_CLIENTS: {client_id!r} is listed twice")
            found[client_id] = secret.strip()
        return cls(found)

    def authenticate(self, client_id: str, secret: str) -> bool:
        """True when `secret` is `client_id`'s; constant time, the same work for unknown ids."""
        expected = self.secrets.get(client_id)
        matches = hmac.compare_digest((expected or _DUMMY).encode(), secret.encode())
        return matches and expected is not None


async def app_service_clients(request: Request) -> ServiceClients:
    """The clients `build_app` parsed from OAUTH_CLIENTS (as a dependency: `clients: KnownServiceClients`)."""
    clients: ServiceClients = app_state(request).service_clients
    return clients


KnownServiceClients = Annotated[ServiceClients, Depends(app_service_clients)]
