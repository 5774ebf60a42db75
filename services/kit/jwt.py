"""Signing and verifying the shop's RS256 access tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from services.kit.errors import ApiError
from services.kit.tracing import record_user

log = logging.getLogger("kit.jwt")
ALGORITHM = "RS256"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, from a verified access token: a user, or one of the shop's services.

    A service token (OAuth 2.0 client credentials grant at auth's `POST /oauth2/token`) has
    `client_id` = `sub` = the service's name, no email and no groups: a service is never an admin.
    """

    sub: str
    email: str
    groups: tuple[str, ...]
    token: str
    name: str = ""
    client_id: str | None = None

    @property
    def is_user(self) -> bool:
        """A signed-in person (customer, beta tester or admin), not a service."""
        return self.client_id is None

    def is_service(self, name: str) -> bool:
        """The caller is the shop service `name` (its own token, not a shopper's token it passed on)."""
        return self.client_id is not None and self.client_id == name

    def in_group(self, group: str) -> bool:
        return group in self.groups

    def may_see(self, owner_id: str) -> bool:
        """A user's records are visible to that user and to admins."""
        return self.sub == owner_id or self.in_group("admin")


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return jwk


def sign(private_key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return pyjwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})


class JwksVerifier:
    """Verifies access tokens against a JWKS URL: keys cached, refetched when a token names an unknown kid."""

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        *,
        timeout: float = 3.0,
        min_refresh: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.timeout = timeout
        self.min_refresh = min_refresh
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._transport = transport

    def trust(self, jwks: Any) -> None:
        """Add the RSA keys of a JWK Set (RFC 7517 section 5: an object whose `keys` member is a list).

        The auth service trusts its own key this way, tests a test key, `_refresh` what auth publishes.
        Raises ValueError when `jwks` is not a JWK Set; keys this verifier cannot use (no `kid`, not RSA,
        broken numbers) are skipped, as the RFC asks, so one odd key never locks out the others.
        """
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise ValueError("not a JWK Set: no list of keys")
        for jwk in keys:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str):
                log.warning("skipping a key of the JWK Set without a kid: %.80r", jwk)
                continue
            try:
                self._keys[kid] = RSAAlgorithm.from_jwk(jwk)
            except (ValueError, pyjwt.PyJWTError) as exc:
                log.warning("skipping key %r of the JWK Set: %s", kid, exc)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refresh:
                return
            self._fetched_at = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                    response = await client.get(self.jwks_url)
                    response.raise_for_status()
                    self.trust(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("cannot fetch JWKS from %s: %s", self.jwks_url, exc)
                raise ApiError(503, "auth_unavailable", "cannot verify tokens right now") from exc

    async def verify(self, token: str) -> Principal:
        try:
            kid = pyjwt.get_unverified_header(token).get("kid")
        except pyjwt.PyJWTError as exc:
            raise _unauthorized("malformed token") from exc
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("token has no key id")
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise _unauthorized("token signed by an unknown key")
        try:
            claims = pyjwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except pyjwt.ExpiredSignatureError as exc:
            raise _unauthorized("token expired") from exc
        except pyjwt.PyJWTError as exc:
            raise _unauthorized("invalid token") from exc
        if claims.get("typ") != "access":
            raise _unauthorized("not an access token")
        client_id = claims.get("client_id")
        if client_id is not None:  # a service's own token (RFC 9068: sub is the client id)
            if not isinstance(client_id, str) or client_id != claims["sub"]:
                raise _unauthorized("invalid service token")
            return Principal(sub=client_id, email="", groups=(), token=token, client_id=client_id)
        groups = claims.get("groups") or []
        record_user(str(claims["sub"]))
        return Principal(
            sub=str(claims["sub"]),
            email=str(claims.get("email", "")),
            groups=tuple(str(g) for g in groups),
            token=token,
            name=str(claims.get("name") or ""),
        )


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
