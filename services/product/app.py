"""The product service app: catalog REST on PORT, gRPC Inventory on GRPC_PORT."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from services.kit import create_app, load_settings
from services.kit.errors import error_response
from services.product import grpc_api, store
from services.product.api import router
from services.product.settings import Settings

log = logging.getLogger("product.app")


async def _prepare_database(app: FastAPI) -> None:
    await store.create_indexes(app.state.db)
    await store.seed_catalog(app.state.db)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A MongoDB outage is the dependency's fault: 503 (retryable), not a 500.
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "database_unavailable", "the product database is unavailable")


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
    app.add_exception_handler(PyMongoError, _database_unavailable)
    return app
