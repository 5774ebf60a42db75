"""Fixtures of the product tests: the catalog app (v1 and v2) and product with its gRPC Inventory."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.kit.logs import JsonFormatter
from tests.services.product.in_process import Shop, catalog_client, running_product


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    async with running_product() as running:
        yield running


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("product", "v1"))
    logger = logging.getLogger("product.grpc")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with catalog_client("v1") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def client_v2() -> Iterator[TestClient]:
    with catalog_client("v2") as test_client:
        yield test_client
