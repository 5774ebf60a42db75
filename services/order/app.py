"""The order service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.order import store
from services.order.cart_api import router as cart_router
from services.order.inventory_client import InventoryClient
from services.order.orders_api import router as orders_router
from services.order.settings import Settings


async def _start(app: FastAPI) -> None:
    await store.ensure_indexes(app.state.db)
    settings: Settings = app.state.settings
    if getattr(app.state, "inventory", None) is None:
        app.state.inventory = InventoryClient(settings.product_grpc_target, settings.grpc_timeout)


async def _stop(app: FastAPI) -> None:
    inventory = getattr(app.state, "inventory", None)
    if inventory is not None and hasattr(inventory, "aclose"):
        await inventory.aclose()


def build_app(settings: Settings | None = None) -> FastAPI:
    app = create_app(
        settings or load_settings(Settings),
        title="order",
        description="Cart per user and the idempotent checkout (header Idempotency-Key).",
        routers=[cart_router, orders_router],
        startup=[_start],
        shutdown=[_stop],
    )
    app.state.inventory = None
    return app
