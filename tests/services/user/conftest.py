"""Fixtures of the user tests: user alone (tokens from a TokenFactory) and user next to a real auth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.auth.app import build_app as build_auth
from services.kit.testing import TokenFactory
from services.user.app import build_app as build_user
from services.user.settings import Settings as UserSettings
from tests.services.auth.helpers import auth_settings


@pytest.fixture
def user(tokens: TokenFactory) -> Iterator[TestClient]:
    app = build_user(UserSettings(mongo_url=None))
    tokens.trust_in(app)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    auth_app = build_auth(auth_settings(admin_emails="admin@example.com"))
    user_app = build_user(UserSettings(mongo_url=None))
    with TestClient(auth_app) as auth, TestClient(user_app) as user:
        # What user's verifier would fetch from AUTH_JWKS_URL in a cluster.
        user_app.state.verifier.trust(auth.get("/.well-known/jwks.json").json())
        yield auth, user
