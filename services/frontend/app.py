"""The frontend app: pages, the /api/ JSON API, static files, session cookies."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.frontend import api, page_routes
from services.frontend.rendering import install_page_errors
from services.frontend.session import CookieMiddleware
from services.frontend.settings import Settings
from services.kit import create_app, load_settings

log = logging.getLogger("frontend")


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="Shop frontend",
        description="The web shop's pages and a JSON API under /api/ for load tests.",
        routers=[api.router, page_routes.router],
    )
    if settings.session_secret is None:
        log.warning("SESSION_SECRET is not set: using a random one (forms break across replicas/restarts)")
        app.state.session_secret = secrets.token_bytes(32)
    else:
        app.state.session_secret = settings.session_secret.get_secret_value().encode()
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(CookieMiddleware, secure=settings.cookie_secure)
    install_page_errors(app)
    return app
