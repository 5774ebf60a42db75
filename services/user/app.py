"""Build the user app."""

from __future__ import annotations

from fastapi import FastAPI

from services.kit import create_app, load_settings
from services.user import store
from services.user.api import router
from services.user.settings import Settings


async def _create_indexes(app: FastAPI) -> None:
    await store.create_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(
        settings,
        title="user",
        description="The caller's profile and addresses; the user listing for group `admin`.",
        routers=[router],
        startup=[_create_indexes],
    )
