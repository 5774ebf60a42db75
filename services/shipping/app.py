"""The shipping service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.shipping import store
from services.shipping.api import router
from services.shipping.settings import Settings


async def _indexes(app: FastAPI) -> None:
    await store.ensure_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    return create_app(
        settings or load_settings(Settings),
        title="shipping",
        description="Quotes by zone and weight; shipments move created -> shipped -> delivered.",
        routers=[router],
        startup=[_indexes],
    )
