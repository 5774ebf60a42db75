"""Run a service app under uvicorn with graceful shutdown (used by each service's `__main__`)."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.kit.settings import ServiceSettings, SettingsT, load_settings


def serve(build_app: Callable[[SettingsT], FastAPI], settings_class: type[SettingsT]) -> None:
    settings: ServiceSettings = load_settings(settings_class)
    app = build_app(settings)  # type: ignore[arg-type]
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging is already in place
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )
