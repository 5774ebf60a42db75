"""Test helpers: sign tokens with a throw-away key the app under test trusts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from services.kit import jwt


class TokenFactory:
    """Mints access tokens the way the auth service does, with its own key."""

    def __init__(self, kid: str = "test-key", issuer: str = "shop-auth", audience: str = "shop") -> None:
        self.kid = kid
        self.issuer = issuer
        self.audience = audience
        self.private_key = jwt.generate_private_key()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwt.public_jwk(self.private_key, self.kid)]}

    def token(
        self,
        sub: str | None = None,
        email: str = "shopper@example.com",
        groups: Iterable[str] = ("customer",),
        expires_in: int = 300,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub or uuid.uuid4().hex,
            "email": email,
            "groups": list(groups),
            "typ": "access",
            "iat": now,
            "exp": now + expires_in,
            **extra,
        }
        return jwt.sign(self.private_key, self.kid, claims)

    def headers(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}

    def service_headers(self, client_id: str) -> dict[str, str]:
        """A service's own token, as auth's client credentials grant issues it (sub = client_id)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "typ": "access",
            "iat": now,
            "exp": now + 300,
        }
        return {"Authorization": f"Bearer {jwt.sign(self.private_key, self.kid, claims)}"}

    def trust_in(self, app: FastAPI) -> TokenFactory:
        app.state.verifier.trust(self.jwks())
        return self


def undocumented_errors(app: FastAPI) -> list[str]:
    """The 4xx answers `app` really gave (its request metrics) that its OpenAPI document does not list for
    that route and method; routes outside the document (pages, /metrics, unknown paths) and 405 are skipped.
    """
    document = app.openapi()
    service = document.get("info", {}).get("title", "app")
    found = []
    for metric in app.state.metrics.requests.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            method, route, status = (
                sample.labels["method"],
                sample.labels["route"],
                int(sample.labels["status"]),
            )
            if not 400 <= status < 500 or status == 405:
                continue
            operation = document["paths"].get(route, {}).get(method.lower())
            if operation is not None and str(status) not in operation["responses"]:
                found.append(f"{service}: {method} {route} answered {status}; its OpenAPI document omits it")
    return sorted(set(found))
