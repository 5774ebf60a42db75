"""Fixtures of the frontend tests: the app under test in front of a fake shop (fake_shop.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.services.frontend.fake_shop import FakeShop, make_client


@pytest.fixture
def fake() -> FakeShop:
    shop = FakeShop()
    shop.add_user("ada@example.com")
    shop.add_user("bea@example.com", groups=("customer", "beta"))
    return shop


@pytest.fixture
def client(fake: FakeShop) -> Iterator[TestClient]:
    yield from make_client(fake)


@pytest.fixture
def mobile(fake: FakeShop) -> Iterator[TestClient]:
    yield from make_client(fake, variant="mobile-optimized", version="v7")


@pytest.fixture
def beta(fake: FakeShop) -> Iterator[TestClient]:
    yield from make_client(fake, variant="beta-features")
