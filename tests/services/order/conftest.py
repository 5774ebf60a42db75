"""Fixtures of the order tests: order with stand-in neighbours (cart), order in front of the real
services (checkout), and Inventory servers for order's gRPC client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from fastapi.testclient import TestClient

from services.kit.http import ServiceClient
from services.kit.testing import TokenFactory
from services.order.app import build_app
from services.order.settings import Settings
from services.protos import inventory_pb2_grpc
from tests.services.order.fakes import Catalog, FakeInventory, SlowRecordingInventory
from tests.services.order.in_process import Shop, running_shop
from tests.services.product.in_process import Shop as ProductShop
from tests.services.product.in_process import running_product


@pytest.fixture
def cart_shop() -> Iterator[tuple[TestClient, TokenFactory, Catalog, FakeInventory]]:
    settings = Settings(product_url="http://product")
    app = build_app(settings)
    catalog, inventory = Catalog(), FakeInventory()
    app.state.http = ServiceClient(settings, transport=httpx.MockTransport(catalog))
    app.state.inventory = inventory
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        yield client, tokens, catalog, inventory


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    async with running_shop() as running:
        yield running


@pytest.fixture
async def inventory_server() -> AsyncIterator[ProductShop]:
    """The real product service with its gRPC Inventory (what order's client talks to in the cluster)."""
    async with running_product() as running:
        yield running


@pytest.fixture
async def slow_inventory() -> AsyncIterator[tuple[str, SlowRecordingInventory]]:
    server = grpc.aio.server()
    servicer = SlowRecordingInventory()
    inventory_pb2_grpc.add_InventoryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(None)
