"""The payment service app."""

from __future__ import annotations

import random

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.payment import store
from services.payment.api import router
from services.payment.settings import Settings


async def _indexes(app: FastAPI) -> None:
    await store.ensure_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="payment",
        description="Idempotent charges: a simulated card processor or an external provider (PROVIDER_URL).",
        routers=[router],
        startup=[_indexes],
    )
    app.state.fault_random = random.Random()
    return app
