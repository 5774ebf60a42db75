"""Helpers of the auth tests: settings without a key file (a key is generated) and the account journey."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from services.auth.settings import Settings

PASSWORD = "correct horse battery"


def auth_settings(**overrides: Any) -> Settings:
    """auth's settings on the in-memory store with a generated signing key; `overrides` win."""
    values: dict[str, Any] = {"mongo_url": None, "jwt_private_key_file": None, "jwt_private_key": None}
    values.update(overrides)
    return Settings(**values)


def register(client: TestClient, email: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada", **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
