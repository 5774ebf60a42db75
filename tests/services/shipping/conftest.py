"""Fixtures of the shipping tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from services.shipping.settings import Settings
from tests.services.shipping.helpers import shipping_app


@pytest.fixture
def shop() -> Iterator[tuple[TestClient, TokenFactory]]:
    app, tokens = shipping_app(Settings(ship_after_seconds=3600, deliver_after_seconds=7200))
    with TestClient(app) as client:
        yield client, tokens
