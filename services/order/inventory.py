"""The product service's gRPC Inventory as seen by the order service: deadlines, routing metadata,
gRPC errors mapped to ApiError."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from services.kit import ApiError
from services.kit.grpc import outgoing_metadata
from services.protos import inventory_pb2, inventory_pb2_grpc

log = logging.getLogger("order.inventory")

_ERRORS = {
    grpc.StatusCode.FAILED_PRECONDITION: (409, "insufficient_stock", "not enough stock"),
    grpc.StatusCode.NOT_FOUND: (404, "product_not_found", "unknown product"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "bad_request", "inventory rejected the request"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "dependency_timeout", "inventory did not answer in time"),
    grpc.StatusCode.UNAVAILABLE: (503, "dependency_unavailable", "inventory is unavailable"),
    grpc.StatusCode.ABORTED: (503, "inventory_busy", "inventory is busy, try again"),
}


class InventoryClient:
    """Async client for `shop.inventory.v1.Inventory`; one channel per app."""

    def __init__(self, target: str, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = inventory_pb2_grpc.InventoryStub(self._channel)  # type: ignore[no-untyped-call]

    async def get_stock(self, product_ids: Sequence[str]) -> dict[str, int]:
        request = inventory_pb2.GetStockRequest(product_ids=list(product_ids))
        response = await self._call(self._stub.GetStock, request)
        return {level.product_id: level.available for level in response.levels}

    async def reserve(self, order_id: str, items: Sequence[tuple[str, int]]) -> str:
        request = inventory_pb2.ReserveRequest(
            order_id=order_id, items=[inventory_pb2.Item(product_id=p, quantity=q) for p, q in items]
        )
        response = await self._call(self._stub.Reserve, request)
        return str(response.status)

    async def release(self, order_id: str) -> str:
        response = await self._call(self._stub.Release, inventory_pb2.ReleaseRequest(order_id=order_id))
        return str(response.status)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout, metadata=outgoing_metadata())
        except grpc.aio.AioRpcError as exc:
            status, code, message = _ERRORS.get(exc.code(), (502, "inventory_error", "inventory call failed"))
            log.warning("inventory %s: %s %s", self.target, exc.code().name, exc.details())
            raise ApiError(status, code, exc.details() or message) from exc

    async def close(self) -> None:
        await self._channel.close()
