"""Fixtures of the auth tests: the auth app on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.auth.app import build_app
from tests.services.auth.helpers import OAUTH_CLIENTS, PASSWORD, auth_settings, run_hash_burst

ADMIN_EMAILS = "Admin@Example.com, root@example.com"


@pytest.fixture
def auth_app() -> FastAPI:
    """auth with two admin emails (ADMIN_EMAILS) and two service clients (OAUTH_CLIENTS)."""
    return build_app(auth_settings(admin_emails=ADMIN_EMAILS, oauth_clients=SecretStr(OAUTH_CLIENTS)))


@pytest.fixture
def auth(auth_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(auth_app) as client:
        yield client


@pytest.fixture
def auth_with_victim() -> Iterator[TestClient]:
    """auth with one account, victim@example.com (password PASSWORD), for the login throttling tests."""
    with TestClient(build_app(auth_settings())) as client:
        client.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        yield client


@pytest.fixture(scope="module")
def burst() -> dict[str, object]:
    """One burst of hashes in a fresh process (helpers.run_hash_burst), shared by the memory tests."""
    return run_hash_burst()
