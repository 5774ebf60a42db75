"""Run a service app under uvicorn with graceful shutdown (used by each service's `__main__`)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.kit.settings import ConfigurationError, ServiceSettings, SettingsT, load_settings

__all__ = ["ConfigurationError", "run_server", "serve"]


def serve(build_app: Callable[[SettingsT], FastAPI], settings_class: type[SettingsT]) -> None:
    """Start the service; configuration mistakes end it with exit status 2 and a one-line reason."""
    settings: ServiceSettings = load_settings(settings_class)
    try:
        app = build_app(settings)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        sys.exit(f"{settings.service_name} cannot start: {exc}")
    run_server(app, host=settings.host, port=settings.port)


def run_server(app: FastAPI, *, host: str, port: int) -> None:
    """uvicorn as every service runs it (also the benchmark's bare reference app, bench/reference_app.py)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON logging is already in place
        ws="none",  # no service serves WebSockets (uvicorn would load wsproto/websockets when installed)
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )
