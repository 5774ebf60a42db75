"""Stand-ins for order's neighbours: the product catalog over REST and gRPC Inventory (the cart tests),
and a slow Inventory server that records metadata (the Inventory client tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import httpx

from services.kit import ApiError
from services.protos import inventory_pb2 as pb
from services.protos import inventory_pb2_grpc

PRODUCTS = {
    "mug": {
        "id": "mug",
        "name": "Mug",
        "price_cents": 1200,
        "currency": "EUR",
        "stock": 5,
        "image": "/m.svg",
    },
    "kettle": {
        "id": "kettle",
        "name": "Kettle",
        "price_cents": 4500,
        "currency": "EUR",
        "stock": 2,
        "image": None,
    },
}


class FakeInventory:
    """Stands in for the product service's gRPC Inventory (the checkout tests use the real one)."""

    def __init__(self) -> None:
        self.stock = {pid: p["stock"] for pid, p in PRODUCTS.items()}
        self.fail: ApiError | None = None

    async def get_stock(self, product_ids: Sequence[str]) -> dict[str, int]:
        if self.fail:
            raise self.fail
        return {pid: self.stock[pid] for pid in product_ids if pid in self.stock}


class Catalog:
    """The product REST API as the order service sees it; records the forwarded headers."""

    def __init__(self) -> None:
        self.products = {pid: dict(p) for pid, p in PRODUCTS.items()}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        product = self.products.get(request.url.path.rsplit("/", 1)[-1])
        if product is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such product"}})
        return httpx.Response(200, json=product)


class SlowRecordingInventory(inventory_pb2_grpc.InventoryServicer):
    """A stand-in server that records metadata and answers Reserve slowly."""

    def __init__(self) -> None:
        self.metadata: dict[str, str] = {}

    async def GetStock(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        return pb.GetStockResponse(levels=[pb.StockLevel(product_id="headlamp", available=7)])

    async def Reserve(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await asyncio.sleep(2)
        return pb.ReserveResponse(order_id=request.order_id, status="RESERVED")
