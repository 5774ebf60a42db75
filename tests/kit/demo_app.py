"""A small app built with the kit's `create_app`, with routes that exercise what the kit promises:
authentication, groups, outgoing calls, bugs and domain errors."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from services.kit import ApiError, DatabaseSettings, TokenSettings, create_app
from services.kit.http import ServiceClient
from services.kit.jwt import Principal
from services.kit.security import current_user, require_group


class DemoSettings(DatabaseSettings, TokenSettings):
    """A service with a database that verifies tokens, like most of the shop's."""


class Item(BaseModel):
    name: str
    quantity: int


def demo_app(downstream: httpx.MockTransport | None = None, **settings: object) -> FastAPI:
    router = APIRouter()

    @router.post("/items/{item_id}")
    async def create(item_id: str, item: Item, user: Principal = Depends(current_user)) -> dict[str, object]:
        return {"id": item_id, "name": item.name, "user": user.sub}

    @router.get("/admin")
    async def admin(user: Principal = Depends(require_group("admin"))) -> dict[str, str]:
        return {"hello": user.email}

    @router.get("/call")
    async def call(request: Request) -> dict[str, int]:
        response = await request.app.state.http.get("http://product:3000/products")
        return {"status": response.status_code}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @router.get("/teapot")
    async def teapot() -> None:
        raise ApiError(409, "conflict_here", "already there", {"id": "x"})

    options = {"service_name": "demo", "version": "v7", "max_body_bytes": 2048, **settings}
    config = DemoSettings(**options)  # type: ignore[arg-type]
    app = create_app(config, title="demo", routers=[router])
    if downstream is not None:
        app.state.http = ServiceClient(config, transport=downstream)
    return app
