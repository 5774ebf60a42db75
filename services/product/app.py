"""The product service app: catalog REST on PORT, gRPC Inventory on GRPC_PORT."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.product import grpc_api, store
from services.product.api import router
from services.product.settings import Settings


async def _prepare_database(app: FastAPI) -> None:
    await store.create_indexes(app.state.db)
    await store.seed_catalog(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="product",
        description="Catalog (REST) and stock reservations (gRPC `shop.inventory.v1.Inventory`).",
        routers=[router],
        startup=[_prepare_database, grpc_api.start_grpc],
        shutdown=[grpc_api.stop_grpc],
        readiness=[grpc_api.grpc_inventory],
    )
    return app
