"""Fixtures of the kit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from tests.kit.demo_app import demo_app


@pytest.fixture
def client(tokens: TokenFactory) -> Iterator[TestClient]:
    app = demo_app()
    tokens.trust_in(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
