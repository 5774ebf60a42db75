"""The notification service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.notification import store
from services.notification.api import router
from services.notification.settings import Settings


async def _indexes(app: FastAPI) -> None:
    await store.ensure_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    return create_app(
        settings or load_settings(Settings),
        title="notification",
        description="The notification outbox: stored in MongoDB, listed per user. No real email is sent.",
        routers=[router],
        startup=[_indexes],
    )
