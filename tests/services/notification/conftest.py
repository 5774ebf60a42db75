"""Fixtures of the notification tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from services.notification.app import build_app
from services.notification.settings import Settings


@pytest.fixture
def shop() -> Iterator[tuple[TestClient, TokenFactory]]:
    app = build_app(Settings())
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        yield client, tokens
