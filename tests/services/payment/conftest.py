"""Fixtures of the payment tests: the payment app, a client, tokens it trusts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from services.payment.app import build_app
from services.payment.settings import Settings


@pytest.fixture
def app() -> FastAPI:
    return build_app(Settings())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def tokens(app: FastAPI) -> TokenFactory:
    return TokenFactory().trust_in(app)
