"""The order service app."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.kit.service_identity import ServiceIdentity
from services.order import settle, store, tracking
from services.order.cart_api import router as cart_router
from services.order.inventory_client import InventoryClient
from services.order.orders_api import router as orders_router
from services.order.settings import Settings

log = logging.getLogger("order.app")


async def _start(app: FastAPI) -> None:
    await store.ensure_indexes(app.state.db)
    settings: Settings = app.state.settings
    if getattr(app.state, "inventory", None) is None:
        app.state.inventory = InventoryClient(settings.product_grpc_target, settings.grpc_timeout)
    app.state.identity = ServiceIdentity(
        app.state.http, settings.auth_url, settings.oauth_client_id, settings.oauth_client_secret
    )
    if not app.state.identity.configured:
        log.warning(
            "OAUTH_CLIENT_SECRET is unset: order has no identity of its own (no refunds, tracking, settling)"
        )
    app.state.tracker = asyncio.create_task(tracking.run(app), name="shipment-tracker")
    app.state.settler = asyncio.create_task(settle.run(app), name="checkout-settler")


async def _stop(app: FastAPI) -> None:
    for name in ("tracker", "settler"):
        task = getattr(app.state, name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
