"""Fixtures of the auth tests: the auth app on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.auth.app import build_app
from tests.services.auth.helpers import PASSWORD, auth_settings

ADMIN_EMAILS = "Admin@Example.com, root@example.com"


@pytest.fixture
def auth() -> Iterator[TestClient]:
    """auth with two admin emails (ADMIN_EMAILS)."""
    with TestClient(build_app(auth_settings(admin_emails=ADMIN_EMAILS))) as client:
        yield client


@pytest.fixture
def auth_with_victim() -> Iterator[TestClient]:
    """auth with one account, victim@example.com (password PASSWORD), for the login throttling tests."""
    with TestClient(build_app(auth_settings())) as client:
        client.post("/auth/register", json={"email": "victim@example.com", "password": PASSWORD, "name": "V"})
        yield client
