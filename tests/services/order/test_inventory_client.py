"""order's client of product's gRPC Inventory (services/order/inventory_client.py), against the real
product server and a slow stand-in: answers, error mapping, routing metadata, deadlines."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.dev import free_port
from services.kit import ApiError
from services.kit.context import forwarded_var
from services.order.inventory_client import InventoryClient, Reservation
from tests.services.product.in_process import Shop

pytestmark = pytest.mark.timeout(60)


async def test_client_reserves_reads_and_releases(inventory_server: Shop) -> None:
    async with InventoryClient(inventory_server.target, timeout=5) as client:
        reservation = await client.reserve("order-11", {"headlamp": 2, "chef-knife": 1})
        assert reservation == Reservation("order-11", "RESERVED", {"chef-knife": 1, "headlamp": 2})
        assert await client.get_stock(["headlamp"]) == {"headlamp": 53}
        assert await client.release("order-11") == "RELEASED"
        assert await client.release("order-11") == "RELEASED"
        assert await client.get_stock(["headlamp", "chef-knife"]) == {"headlamp": 55, "chef-knife": 20}


async def test_client_maps_inventory_errors_to_api_errors(inventory_server: Shop) -> None:
    await inventory_server.set_stock("chef-knife", 1)
    async with InventoryClient(inventory_server.target, timeout=5) as client:
        with pytest.raises(ApiError) as short:
            await client.reserve("order-12", [("chef-knife", 3)])
        assert (short.value.status, short.value.code) == (409, "out_of_stock")
        assert short.value.details == {"product_id": "chef-knife", "requested": 3, "available": 1}
        with pytest.raises(ApiError) as unknown:
            await client.reserve("order-13", [("unicorn", 1)])
        assert (unknown.value.status, unknown.value.code) == (409, "unknown_product")
        with pytest.raises(ApiError) as missing:
            await client.get_stock(["unicorn"])
        assert (missing.value.status, missing.value.code) == (404, "product_not_found")
        with pytest.raises(ApiError) as invalid:
            await client.reserve("", [("headlamp", 1)])
        assert (invalid.value.status, invalid.value.code) == (422, "invalid_reservation")


async def test_client_reports_an_unreachable_inventory_as_503() -> None:
    async with InventoryClient(f"127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(ApiError) as caught:
            await client.get_stock(["headlamp"])
    assert (caught.value.status, caught.value.code) == (503, "dependency_unavailable")


async def test_client_forwards_routing_headers_as_metadata(slow_inventory: Any) -> None:
    target, servicer = slow_inventory
    token = forwarded_var.set(
        {"x-request-id": "req-9", "x-user-id": "u-1", "canary": "true", "cookie": "s=1"}
    )
    try:
        async with InventoryClient(target, timeout=2) as client:
            assert await client.get_stock(["headlamp"]) == {"headlamp": 7}
    finally:
        forwarded_var.reset(token)
    assert servicer.metadata["x-request-id"] == "req-9"
    assert servicer.metadata["x-user-id"] == "u-1"
    assert servicer.metadata["canary"] == "true"
    assert "cookie" not in servicer.metadata  # secrets stay out of gRPC metadata


async def test_client_deadline_becomes_504(slow_inventory: Any) -> None:
    target, _ = slow_inventory
    async with InventoryClient(target, timeout=0.2) as client:
        with pytest.raises(ApiError) as caught:
            await client.reserve("order-14", [("headlamp", 1)])
    assert (caught.value.status, caught.value.code) == (504, "dependency_timeout")
