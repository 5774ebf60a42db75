"""A service's own identity: an access token from auth by the OAuth 2.0 client credentials grant.

RFC 6749 section 4.4: the service posts `grant_type=client_credentials` to auth's token endpoint,
authenticated with its client id and secret (HTTP Basic, section 2.3.1), and gets a short-lived RS256
access token whose `sub` and `client_id` are the service's name. Callees verify it like a user token
(`services.kit.jwt`) and check `Principal.is_service(...)`. The token is cached until shortly before
it expires; the call to auth goes through the kit's `ServiceClient` (timeouts, trace context) without
the shopper's headers (`forward=False`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

from pydantic import SecretStr

from services.kit.errors import ApiError
from services.kit.http import ServiceClient

log = logging.getLogger("kit.identity")
TOKEN_PATH = "/oauth2/token"


class ServiceIdentity:
    """This service's bearer token for calls it makes on its own behalf (refunds, background jobs).

    `authorization()` -> `{"authorization": "Bearer <token>"}` to pass as `headers=` to a `ServiceClient`
    call. Raises `ApiError` 503 `service_identity_unavailable` when no secret is configured or auth
    refuses the credentials, and the `ServiceClient`'s 503/504 when auth cannot be reached.
    """

    def __init__(
        self,
        http: ServiceClient,
        auth_url: str,
        client_id: str,
        client_secret: SecretStr | None,
        *,
        refresh_before_seconds: float = 30.0,
    ) -> None:
        self.http = http
        self.token_url = auth_url.rstrip("/") + TOKEN_PATH
        self.client_id = client_id
        self._secret = client_secret
        self.refresh_before_seconds = refresh_before_seconds
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self._secret is not None and bool(self._secret.get_secret_value())

    async def authorization(self) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token()}"}

    async def token(self) -> str:
        """A token valid for at least `refresh_before_seconds` more (fetched when needed)."""
        if self._token is not None and time.monotonic() < self._valid_until:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._valid_until:
                await self._fetch()
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the cached token (e.g. after a callee answered 401 to it): the next call fetches anew."""
        self._token, self._valid_until = None, 0.0

    async def _fetch(self) -> None:
        if self._secret is None or not self.configured:
            raise ApiError(
                503, "service_identity_unavailable", f"{self.client_id} has no client secret configured"
            )
        basic = (quote(self.client_id, safe=""), quote(self._secret.get_secret_value(), safe=""))
        started = time.monotonic()
        response = await self.http.post(
            self.token_url, data={"grant_type": "client_credentials"}, auth=basic, forward=False
        )
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError):
            body, token, lifetime = None, "", 0.0
        if response.status_code != 200 or not token:
            reason = body.get("error") if isinstance(body, dict) else None
            log.error("auth refused the token of %s: %s %s", self.client_id, response.status_code, reason)
            raise ApiError(
                503, "service_identity_unavailable", f"auth did not issue a token to {self.client_id}"
            )
        self._token = token
        self._valid_until = started + max(0.0, lifetime - self.refresh_before_seconds)
        log.info("service token for %s (valid %.0fs)", self.client_id, lifetime)
