"""Named FastAPI dependencies, declared once for every service (as full-stack-fastapi-template's deps.py).

Use them as parameter types in route handlers; FastAPI resolves them per request:

    @router.get("/orders")
    async def list_orders(db: Db, user: CurrentUser, settings: AppSettings[Settings]) -> OrderList: ...

- `CurrentUser`: the signed-in user (401 without a valid token, 403 for a service's own token);
- `AdminUser`: a signed-in user of group `admin` (403 otherwise);
- `Caller`: whoever calls with a valid token, a user or a service (`Principal.is_service(...)`);
- `Db`: the service's MongoDB database (services with `DatabaseSettings`);
- `Http`: the `ServiceClient` for calls to neighbours (timeouts, routing headers, trace context);
- `AppSettings[Settings]`: the service's settings, typed as its own `Settings` class.

`app_state(request)` is the one place that reads `request.app.state`, for helpers that are no route.
The dependencies are `async def`: FastAPI runs sync ones on its shared thread pool
(tests/kit/test_cpu_work.py).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from starlette.datastructures import State

from services.kit.db import Database
from services.kit.http import ServiceClient
from services.kit.jwt import Principal
from services.kit.security import current_caller, current_user, require_group
from services.kit.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def app_state(request: Request) -> State:
    """What `create_app` (and the service's `build_app`) keep for the app: settings, db, http, verifier..."""
    return cast(State, request.app.state)


async def database(request: Request) -> Database:
    state = app_state(request)
    if not hasattr(state, "db"):
        raise RuntimeError("this service has no database: its Settings do not subclass DatabaseSettings")
    return cast(Database, state.db)


async def service_client(request: Request) -> ServiceClient:
    return cast(ServiceClient, app_state(request).http)


async def app_settings(request: Request) -> Any:
    """The app's settings (typed by the `AppSettings[...]` alias that uses this)."""
    return app_state(request).settings


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(require_group("admin"))]
Caller = Annotated[Principal, Depends(current_caller)]
Db = Annotated[Database, Depends(database)]
Http = Annotated[ServiceClient, Depends(service_client)]
AppSettings = Annotated[SettingsT, Depends(app_settings)]
