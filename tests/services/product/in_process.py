"""The product service running in-process with its gRPC Inventory on a free loopback port: what the
product tests use, and what order's Inventory client tests talk to (the client lives with order, the
contract is services/protos/inventory.proto)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from scripts.dev import free_port
from services.product.app import build_app
from services.product.settings import Settings
from services.protos import inventory_pb2 as pb
from services.protos import inventory_pb2_grpc

DB_LATENCY = 0.002  # seconds per database call, see Yielding


class Yielding:
    """Wraps a database or collection so every awaited call waits a little first, letting other
    calls run in between. mongomock never suspends, so without this concurrent calls would not
    interleave and a racy read-then-write implementation would still pass the race tests."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):

            async def interleaved(*args: Any, **kwargs: Any) -> Any:
                await asyncio.sleep(DB_LATENCY)
                return await attr(*args, **kwargs)

            return interleaved
        if name in ("products", "reservations"):
            return Yielding(attr)
        return attr


@dataclass
class Shop:
    app: FastAPI
    db: Any
    stub: Any
    channel: grpc.aio.Channel
    http: httpx.AsyncClient
    target: str

    async def stock(self, product_id: str) -> int:
        reply = await self.stub.GetStock(pb.GetStockRequest(product_ids=[product_id]), timeout=5)
        return int(reply.levels[0].available)

    async def set_stock(self, product_id: str, units: int) -> None:
        await self.db.products.update_one({"_id": product_id}, {"$set": {"stock": units}})

    async def reserve(self, order_id: str, *items: tuple[str, int]) -> Any:
        request = pb.ReserveRequest(
            order_id=order_id, items=[pb.Item(product_id=p, quantity=q) for p, q in items]
        )
        return await self.stub.Reserve(request, timeout=5)

    async def release(self, order_id: str) -> str:
        return str((await self.stub.Release(pb.ReleaseRequest(order_id=order_id), timeout=5)).status)


@asynccontextmanager
async def running_product() -> AsyncIterator[Shop]:
    """product with its gRPC server started, its database calls interleaving (Yielding)."""
    port = free_port()
    app = build_app(Settings(grpc_port=port, mongo_url=None, reserve_wait_seconds=0.5))
    async with app.router.lifespan_context(app):
        app.state.inventory.db = Yielding(app.state.db)
        target = f"127.0.0.1:{port}"
        async with (
            grpc.aio.insecure_channel(target) as channel,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://product") as http,
        ):
            stub = inventory_pb2_grpc.InventoryStub(channel)
            yield Shop(app, app.state.db, stub, channel, http, target)


def catalog_client(version: str = "v1") -> TestClient:
    """A client of the product app (catalog REST) as build `version`; start it with `with`."""
    settings = Settings(version=version, grpc_port=free_port(), mongo_url=None)
    return TestClient(build_app(settings))
