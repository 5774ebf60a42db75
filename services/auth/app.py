"""Build the auth app."""

from __future__ import annotations

from fastapi import FastAPI

from services.auth import store
from services.auth.api import router
from services.auth.keys import load_signing_key
from services.auth.settings import Settings
from services.kit import create_app, load_settings


async def _create_indexes(app: FastAPI) -> None:
    await store.create_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="auth",
        description="Accounts, login with throttling, refresh-token rotation, RS256 access tokens, JWKS.",
        routers=[router],
        startup=[_create_indexes],
    )
    signing_key = load_signing_key(settings)  # after create_app (logging is set up); fails fast on a bad key
    app.state.signing_key = signing_key
    # auth must not call itself for its own JWKS: its verifier trusts its key directly.
    app.state.verifier.trust(signing_key.jwks())
    return app
