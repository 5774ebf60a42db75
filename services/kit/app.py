"""`create_app`: a FastAPI app with everything a shop service needs, so services only add their routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pymongo.errors import ConnectionFailure, ExecutionTimeout

from services.kit import db, tracing
from services.kit.errors import add_error_schemas, document_errors, error_response, install_error_handlers
from services.kit.http import ServiceClient
from services.kit.jwt import JwksVerifier
from services.kit.logs import setup_logging
from services.kit.metrics import HttpMetrics
from services.kit.middleware import RequestMiddleware
from services.kit.settings import DatabaseSettings, ServiceSettings, TokenSettings

log = logging.getLogger("kit.app")

Hook = Callable[[FastAPI], Awaitable[None]]
ReadinessCheck = Callable[[FastAPI], Awaitable[None]]
# Errors that mean "MongoDB is not there yet" (a pod started before the database): retry, don't crash-loop.
_NOT_YET = (ConnectionFailure, ExecutionTimeout)
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
DOCS_ASSETS_PATH = "/docs-assets"  # Swagger UI and ReDoc JS/CSS, served from the fastapi-offline package


async def _run_hooks(app: FastAPI, hooks: list[Hook]) -> list[Hook]:
    """Run the startup hooks in order; return those still to run if MongoDB was not reachable."""
    for index, hook in enumerate(hooks):
        try:
            await hook(app)
        except _NOT_YET as exc:
            log.warning("startup step %s: MongoDB not reachable yet (%s)", hook.__name__, type(exc).__name__)
            app.state.started = False
            return hooks[index:]
    app.state.started = True
    return []


async def _retry_hooks(app: FastAPI, pending: list[Hook]) -> None:
    attempt = 0
    while pending:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        log.info("retrying startup in %.0fs (%d steps left)", delay, len(pending))
        await asyncio.sleep(delay)
        pending = await _run_hooks(app, pending)
        attempt += 1
    log.info("startup complete")


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    startup: Sequence[Hook] = (),
    shutdown: Sequence[Hook] = (),
    readiness: Sequence[ReadinessCheck] = (),
) -> FastAPI:
    """Build a service app.

    `app.state` carries `settings`, `http` (a `ServiceClient`), and what the settings' classes ask for:
    `db` (the service's MongoDB database) for `DatabaseSettings`, `verifier` (JWT verification against
    auth's JWKS) for `TokenSettings`. `startup` hooks run in order once the app starts (create
    indexes, seed, start a gRPC server); `shutdown` hooks run in reverse on the way out.
    """
    uses_database = isinstance(settings, DatabaseSettings)
    setup_logging(settings.service_name, settings.version, settings.log_level)
    tracing.setup_tracing(settings.service_name, settings.version)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "starting %s %s on %s:%s", settings.service_name, settings.version, settings.host, settings.port
        )
        retrying: asyncio.Task[None] | None = None
        pending = await _run_hooks(app, list(startup))
        if (
            pending
        ):  # MongoDB is not reachable yet: serve /healthz, keep /readyz at 503, retry in the background
            retrying = asyncio.create_task(_retry_hooks(app, pending))
        try:
            yield
        finally:
            app.state.shutting_down = True
            if retrying is not None:
                retrying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retrying
            for hook in reversed(shutdown):
                await hook(app)
            await app.state.http.aclose()
            if uses_database:
                await db.close_client(app.state.mongo)
            log.info("stopped %s", settings.service_name)

    # /docs (Swagger UI) and /redoc load their JS and CSS from this service (fastapi-offline ships them),
    # never from a CDN: they work on a laptop without internet and inside a cluster without egress.
    # validatorUrl off: Swagger UI would otherwise ask validator.swagger.io for a badge.
    app = FastAPIOffline(
        title=title,
        description=description,
        version=settings.version,
        lifespan=lifespan,
        static_url=DOCS_ASSETS_PATH,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.shutting_down = False
    app.state.started = False
    app.state.http = ServiceClient(settings)
    if isinstance(settings, TokenSettings):
        app.state.verifier = JwksVerifier(settings.auth_jwks_url, settings.jwt_issuer, settings.jwt_audience)
    if isinstance(settings, DatabaseSettings):
        app.state.mongo = db.create_mongo_client(settings)
        app.state.db = app.state.mongo[settings.database_name]

    metrics = HttpMetrics(settings.service_name)
    app.add_middleware(
        RequestMiddleware,
        served_by=f"{settings.service_name}/{settings.version}",
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
    )
    install_error_handlers(app)
    _add_operational_routes(app, metrics, readiness, uses_database)
    for router in routers:
        add_routes(app, router)
    tracing.instrument_app(app)
    app.state.metrics = metrics
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(app)  # the error answers each route really gives (services/kit/errors.py)
            app.openapi_schema = add_error_schemas(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes straight onto the app. Since FastAPI 0.137, `include_router` adds a node that is
    resolved on every request: each request re-walks the router's routes twice (a version check, then the
    match) before the real match; on the frontend's 40 routes that was 18 % of its CPU (docs/performance.md).
    The routes of an `APIRouter` already carry its prefix, tags, dependencies and `include_in_schema`."""
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a mount or nested router: FastAPI's own inclusion handles it
            app.include_router(router)
            return
    app.router.routes.extend(router.routes)


def _add_operational_routes(
    app: FastAPI, metrics: HttpMetrics, readiness: Sequence[ReadinessCheck], uses_database: bool
) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness (MongoDB ping and service checks)")
    async def readyz() -> JSONResponse:
        if app.state.shutting_down:
            return error_response(503, "shutting_down", "service is shutting down")
        if not app.state.started:
            return error_response(503, "starting", "startup has not finished (waiting for MongoDB)")
        checks: list[tuple[str, ReadinessCheck]] = []
        if uses_database:
            checks.append(("mongodb", _ping_database))
        checks.extend((check.__name__.strip("_"), check) for check in readiness)
        results: dict[str, str] = {}
        for name, check in checks:
            try:
                await check(app)
                results[name] = "ok"
            except Exception as exc:
                log.warning("readiness check %s failed: %s", name, exc)
                results[name] = f"failed: {type(exc).__name__}"
                return error_response(503, "not_ready", f"{name} is not ready", results)
        return JSONResponse({"status": "ready", "checks": results})

    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)


async def _ping_database(app: FastAPI) -> None:
    await db.ping(app.state.db)
