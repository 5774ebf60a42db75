"""The gRPC `shop.inventory.v1.Inventory` server: started and stopped with the app, probed by /readyz."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from fastapi import FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo.errors import PyMongoError

from services.kit import grpc as kit_grpc
from services.kit.context import request_id_var
from services.kit.db import Database
from services.product import inventory
from services.product.inventory import InventoryError
from services.product.settings import Settings
from services.protos import inventory_pb2, inventory_pb2_grpc

log = logging.getLogger("product.grpc")

SERVICE_NAME = "shop.inventory.v1.Inventory"
STOP_GRACE_SECONDS = 5.0

STATUS_CODES = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "out_of_stock": grpc.StatusCode.FAILED_PRECONDITION,
    "busy": grpc.StatusCode.ABORTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}

T = TypeVar("T")
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")  # what an ASCII gRPC metadata value may hold


class InventoryService(inventory_pb2_grpc.InventoryServicer):
    """No JWT here: the mesh decides who may reach port 9000. Each call is logged with the
    caller's x-request-id so it can be matched with the HTTP request that caused it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.wait_seconds = settings.reserve_wait_seconds
        # Like x-served-by on HTTP: lets a canary split of gRPC traffic be measured by the caller.
        self.served_by = (("x-served-by", f"{settings.service_name}/{settings.version}"),)
        # Reservations finish even if the caller goes away (shielded); kept here until done.
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetStockResponse:
        work = inventory.get_stock(self.db, list(request.product_ids))
        levels = await self._call(context, "GetStock", work)
        return inventory_pb2.GetStockResponse(
            levels=[inventory_pb2.StockLevel(product_id=pid, available=count) for pid, count in levels]
        )

    async def Reserve(
        self, request: inventory_pb2.ReserveRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReserveResponse:
        items = [(item.product_id, item.quantity) for item in request.items]
        work = inventory.reserve(self.db, request.order_id, items, self.wait_seconds)
        reservation = await self._call(context, "Reserve", self._shielded(work), order_id=request.order_id)
        return inventory_pb2.ReserveResponse(
            order_id=reservation.order_id,
            status=reservation.status,
            items=[inventory_pb2.Item(product_id=pid, quantity=qty) for pid, qty in reservation.items],
        )

    async def Release(
        self, request: inventory_pb2.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReleaseResponse:
        work = inventory.release(self.db, request.order_id, self.wait_seconds)
        status = await self._call(context, "Release", self._shielded(work), order_id=request.order_id)
        return inventory_pb2.ReleaseResponse(order_id=request.order_id, status=status)

    async def _shielded(self, work: Awaitable[T]) -> T:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return await asyncio.shield(task)

    async def _call(
        self, context: grpc.aio.ServicerContext, method: str, work: Awaitable[T], **fields: str
    ) -> T:
        token = request_id_var.set(kit_grpc.incoming_value(context, "x-request-id"))
        await context.send_initial_metadata(self.served_by)
        try:
            result = await work
            log.info("%s ok", method, extra={"fields": {"rpc": method, **fields}})
            return result
        except InventoryError as exc:
            log.info("%s %s: %s", method, exc.code, exc.message, extra={"fields": {"rpc": method, **fields}})
            await _abort(context, exc)
        except PyMongoError as exc:
            # Never UNKNOWN with a stack trace: the caller learns it may retry (Reserve is idempotent).
            log.error("%s: database error: %s", method, exc, extra={"fields": {"rpc": method, **fields}})
            await _abort(context, InventoryError("unavailable", "inventory database is unavailable"))
        finally:
            request_id_var.reset(token)

    async def drain(self, seconds: float) -> None:
        """Let reservations whose callers went away finish before the process exits."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=seconds)


async def _abort(context: grpc.aio.ServicerContext, exc: InventoryError) -> NoReturn:
    # The message is the status detail; structured details ride along as trailing metadata.
    details = [
        (f"inventory-{key}", str(value))
        for key, value in exc.details.items()
        if key != "product_ids" and _METADATA_VALUE.fullmatch(str(value))
    ]
    context.set_trailing_metadata((("inventory-error", exc.code), *details))
    await context.abort(STATUS_CODES[exc.code], exc.message)
    raise AssertionError("unreachable")  # context.abort always raises


def local_target(host: str, port: int) -> str:
    """Where this process can reach its own gRPC server."""
    if host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if host == "::":
        return f"[::1]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    server, health = kit_grpc.create_server(settings.host, settings.grpc_port)
    service = InventoryService(app.state.db, settings)
    inventory_pb2_grpc.add_InventoryServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    await server.start()
    await kit_grpc.set_serving(health, SERVICE_NAME, True)
    app.state.grpc_server, app.state.grpc_health, app.state.inventory = server, health, service
    app.state.grpc_probe = grpc.aio.insecure_channel(local_target(settings.host, settings.grpc_port))
    log.info("gRPC %s listening on %s:%s", SERVICE_NAME, settings.host, settings.grpc_port)


async def stop_grpc(app: FastAPI) -> None:
    server: grpc.aio.Server | None = getattr(app.state, "grpc_server", None)
    if server is None:
        return
    await kit_grpc.set_serving(app.state.grpc_health, SERVICE_NAME, False)
    await server.stop(STOP_GRACE_SECONDS)
    await app.state.inventory.drain(STOP_GRACE_SECONDS)
    await app.state.grpc_probe.close()
    app.state.grpc_server = None
    log.info("gRPC %s stopped", SERVICE_NAME)


async def grpc_inventory(app: FastAPI) -> None:
    """Readiness: our own gRPC server answers its health check with SERVING."""
    channel: grpc.aio.Channel = app.state.grpc_probe
    stub = health_pb2_grpc.HealthStub(channel)
    check: Callable[..., Awaitable[health_pb2.HealthCheckResponse]] = stub.Check
    response = await check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1.0)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(f"{SERVICE_NAME} is not serving")
