"""Build the auth app."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.auth import oauth2, store
from services.auth.api import router
from services.auth.clients import ServiceClients
from services.auth.keys import load_signing_key
from services.auth.settings import Settings
from services.kit import create_app, load_settings
from services.kit.jwt import JwksVerifier

log = logging.getLogger("auth.app")


async def _create_indexes(app: FastAPI) -> None:
    await store.create_indexes(app.state.db)


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="auth",
        description="Accounts, login with throttling, refresh-token rotation, RS256 access tokens, JWKS.",
        routers=[router, oauth2.router],
        startup=[_create_indexes],
    )
    signing_key = load_signing_key(settings)  # after create_app (logging is set up); fails fast on a bad key
    app.state.signing_key = signing_key
    app.state.service_clients = ServiceClients.parse(settings.oauth_clients)
    if not app.state.service_clients.secrets:
        log.warning("OAUTH_CLIENTS is unset: no service can get its own token (order cannot refund)")
    else:
        log.info("OAuth clients: %s", ", ".join(sorted(app.state.service_clients.secrets)))
    # auth verifies its own tokens with its own key: no JWKS to fetch (it has no TokenSettings).
    own_jwks = f"http://{settings.host}:{settings.port}/.well-known/jwks.json"
    app.state.verifier = JwksVerifier(own_jwks, settings.jwt_issuer, settings.jwt_audience)
    app.state.verifier.trust(signing_key.jwks())
    return app
