"""Async client for the product service's gRPC Inventory API (used by order, which calls it).

Every call has a deadline and carries the current request's routing headers as metadata
(`services.kit.grpc.outgoing_metadata`); gRPC errors become `ApiError`s with the shop's error codes:

| gRPC status          | ApiError                                                   |
|----------------------|------------------------------------------------------------|
| FAILED_PRECONDITION  | 409 `out_of_stock` (details: product_id, requested, available) |
| NOT_FOUND            | 409 `unknown_product` on reserve, 404 `product_not_found` on get_stock |
| INVALID_ARGUMENT     | 422 `invalid_reservation`                                  |
| ABORTED              | 503 `inventory_busy` (same order still being reserved; retry) |
| UNAVAILABLE          | 503 `dependency_unavailable`                               |
| DEADLINE_EXCEEDED    | 504 `dependency_timeout`                                   |
| anything else        | 502 `bad_gateway`                                          |

Reserve and Release are idempotent per order id, so retrying them (also by a mesh) is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any

import grpc
from fastapi import Depends, Request

from services.kit.deps import app_state
from services.kit.errors import ApiError
from services.kit.grpc import outgoing_metadata
from services.protos import inventory_pb2, inventory_pb2_grpc

log = logging.getLogger("order.inventory_client")
# gRPC backs off reconnecting up to 120 s by default: after product was down for 20 s, order would go on
# failing for seconds after product is back (make chaos-test measured 17.5 s). Capped at 2 s.
RECONNECT = [("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 2000)]


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: str  # RESERVED, or RELEASED if the order's reservation was already given back
    items: dict[str, int]


class InventoryClient:
    def __init__(self, target: str, timeout: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    def _inventory(self) -> Any:
        # Created on first use, inside the running event loop.
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=RECONNECT)
            self._stub = inventory_pb2_grpc.InventoryStub(self._channel)  # type: ignore[no-untyped-call]
        return self._stub

    async def get_stock(self, product_ids: Iterable[str]) -> dict[str, int]:
        """Units available per product id (404 `product_not_found` if one is unknown)."""
        request = inventory_pb2.GetStockRequest(product_ids=list(product_ids))
        response = await self._call("GetStock", request, not_found=(404, "product_not_found"))
        return {level.product_id: level.available for level in response.levels}

    async def reserve(self, order_id: str, items: dict[str, int] | Iterable[tuple[str, int]]) -> Reservation:
        """Reserve all items ({product_id: quantity}) for the order, or none (409 `out_of_stock`)."""
        pairs = items.items() if isinstance(items, dict) else items
        request = inventory_pb2.ReserveRequest(
            order_id=order_id, items=[inventory_pb2.Item(product_id=pid, quantity=qty) for pid, qty in pairs]
        )
        response = await self._call("Reserve", request, not_found=(409, "unknown_product"))
        return Reservation(
            response.order_id, response.status, {item.product_id: item.quantity for item in response.items}
        )

    async def release(self, order_id: str) -> str:
        """Give the order's units back: RELEASED, or NOT_FOUND when nothing was reserved."""
        response = await self._call("Release", inventory_pb2.ReleaseRequest(order_id=order_id))
        return str(response.status)

    async def _call(self, method: str, request: Any, not_found: tuple[int, str] = (404, "not_found")) -> Any:
        rpc = getattr(self._inventory(), method)
        try:
            return await rpc(request, timeout=self.timeout, metadata=outgoing_metadata())
        except grpc.aio.AioRpcError as exc:
            raise _api_error(method, exc, not_found) from exc

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel, self._stub = None, None

    async def __aenter__(self) -> InventoryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _details(exc: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The structured error details the server sends as `inventory-*` trailing metadata."""
    details: dict[str, Any] = {}
    for key, value in exc.trailing_metadata() or ():
        if key.startswith("inventory-") and key != "inventory-error" and isinstance(value, str):
            name = key.removeprefix("inventory-")
            details[name] = int(value) if value.isdigit() else value
    return details


def _api_error(method: str, exc: grpc.aio.AioRpcError, not_found: tuple[int, str]) -> ApiError:
    code, message = exc.code(), exc.details() or ""
    details = _details(exc) or None
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return ApiError(409, "out_of_stock", message, details)
    if code == grpc.StatusCode.NOT_FOUND:
        return ApiError(not_found[0], not_found[1], message, details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ApiError(422, "invalid_reservation", message, details)
    if code == grpc.StatusCode.ABORTED:
        return ApiError(503, "inventory_busy", message, details, headers={"Retry-After": "1"})
    log.warning("inventory %s failed: %s %s", method, code.name, message)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ApiError(503, "dependency_unavailable", "inventory is unavailable")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ApiError(504, "dependency_timeout", "inventory did not answer in time")
    return ApiError(502, "bad_gateway", f"inventory {method} failed: {code.name}")


async def inventory_for_request(request: Request) -> InventoryClient:
    """The client `build_app` started (as a FastAPI dependency: `inventory: InventoryDep`)."""
    client: InventoryClient = app_state(request).inventory
    return client


InventoryDep = Annotated[InventoryClient, Depends(inventory_for_request)]
