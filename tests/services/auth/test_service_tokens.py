"""auth's OAuth 2.0 client credentials grant (`POST /oauth2/token`), and the kit's `ServiceIdentity`."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.auth.app import build_app
from services.auth.clients import ClientsError
from services.auth.settings import Settings
from services.kit import ApiError, ServiceSettings
from services.kit.http import ServiceClient
from services.kit.jwt import JwksVerifier
from services.kit.service_identity import ServiceIdentity
from tests.services.auth.helpers import OAUTH_SECRET as SECRET

FORM = {"content-type": "application/x-www-form-urlencoded"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def verifier_of(auth_app: FastAPI) -> JwksVerifier:
    verifier = JwksVerifier("http://auth/.well-known/jwks.json", "shop-auth", "shop")
    verifier.trust(auth_app.state.signing_key.jwks())
    return verifier


def test_a_service_gets_a_short_lived_token_with_its_own_identity(
    auth: TestClient, auth_app: FastAPI
) -> None:
    response = auth.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic("order", SECRET)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    principal = asyncio.run(verifier_of(auth_app).verify(body["access_token"]))
    assert principal.is_service("order") and not principal.is_service("payment")
    assert not principal.is_user and principal.groups == () and principal.email == ""
    assert not principal.in_group("admin")

    # client_secret_post (RFC 6749 2.3.1) works too
    posted = auth.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "order", "client_secret": SECRET},
    )
    assert posted.status_code == 200


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, basic("order", SECRET + "x"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, basic("payment", SECRET), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        (
            {"grant_type": "password", "username": "a", "password": "b"},
            basic("order", SECRET),
            400,
            "unsupported_grant_type",
        ),
        ({}, basic("order", SECRET), 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            basic("order", SECRET),
            400,
            "invalid_scope",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "order", "client_secret": SECRET},
            basic("order", SECRET),
            400,
            "invalid_request",
        ),
    ],
    ids=[
        "wrong-secret",
        "unknown-client",
        "no-credentials",
        "password-grant",
        "no-grant",
        "scope",
        "two-methods",
    ],
)
def test_refusals_speak_rfc_6749(
    auth: TestClient, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    response = auth.post("/oauth2/token", data=form, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["error_description"]
    if status == 401 and headers:
        assert response.headers["www-authenticate"] == 'Basic realm="shop-auth"'


def test_json_body_is_refused(auth: TestClient) -> None:
    response = auth.post(
        "/oauth2/token", json={"grant_type": "client_credentials"}, headers=basic("order", SECRET)
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "clients",
    ["order", "order=short", f"Order!={SECRET}", f"order={SECRET},order={SECRET}"],
    ids=["no-secret", "short-secret", "bad-id", "twice"],
)
def test_misconfigured_clients_stop_auth_at_start(clients: str) -> None:
    with pytest.raises(ClientsError) as caught:
        build_app(Settings(oauth_clients=SecretStr(clients)))
    assert SECRET not in str(caught.value)  # the message never shows a secret


def test_without_clients_no_service_gets_a_token() -> None:
    with TestClient(build_app(Settings())) as client:
        response = client.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic("order", SECRET)
        )
    assert response.status_code == 401


def identity_for(
    auth_app: FastAPI, secret: str | None = SECRET
) -> tuple[ServiceIdentity, list[httpx.Request]]:
    calls: list[httpx.Request] = []
    asgi = httpx.ASGITransport(app=auth_app)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request)
            return await asgi.handle_async_request(request)

    http = ServiceClient(ServiceSettings(), transport=Recording())
    return ServiceIdentity(http, "http://auth", "order", SecretStr(secret) if secret else None), calls


async def test_service_identity_fetches_once_and_caches(auth_app: FastAPI) -> None:
    identity, calls = identity_for(auth_app)
    async with auth_app.router.lifespan_context(auth_app):
        first, second = await asyncio.gather(identity.authorization(), identity.authorization())
        assert first == second and first["authorization"].startswith("Bearer ")
        assert len(calls) == 1  # one fetch for concurrent callers, then the cache
        assert calls[0].url.path == "/oauth2/token" and calls[0].headers["authorization"].startswith("Basic ")
        principal = await verifier_of(auth_app).verify(first["authorization"].removeprefix("Bearer "))
        assert principal.is_service("order")
        identity.forget()
        await identity.token()
        assert len(calls) == 2


async def test_service_identity_failures_are_503(auth_app: FastAPI) -> None:
    async with auth_app.router.lifespan_context(auth_app):
        for secret in (None, "wrong-secret-0123456789abcdef0123456789"):
            identity, _ = identity_for(auth_app, secret)
            with pytest.raises(ApiError) as caught:
                await identity.token()
            assert caught.value.status == 503 and caught.value.code == "service_identity_unavailable"
