"""The frontend's clients of the services it calls (`Neighbours`), acting as the logged-in shopper.

Every call goes through the kit's `ServiceClient` (timeouts, trace context, routing headers). On top of
the headers the frontend received, it sends the shopper's identity: `authorization`, `x-user-id` and
`x-user-group` from the verified token, so the mesh can route by user deeper in the call chain. It never
passes on its own session cookies (they hold the tokens); other cookies (e.g. `canary=true`) go through.
Downstream errors become `ApiError`s with the downstream's code and message; a 5xx becomes 502/503/504.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from services.kit.context import forwarded_headers, forwarded_var
from services.kit.deps import app_state
from services.kit.errors import ApiError

log = logging.getLogger("frontend.clients")

SESSION_COOKIES = ("shop_access", "shop_refresh", "shop_csrf")
NOTICE_COOKIE = "shop_notice"  # a one-off notice for the page after a redirect (flash)
OWN_COOKIES = (*SESSION_COOKIES, NOTICE_COOKIE)  # the frontend's alone: never passed on
IDENTITY_HEADERS = ("authorization", "x-user-id", "x-user-group")  # set from the verified token only
PRODUCT_SERVED_BY = "frontend.product_served_by"
Json = dict[str, Any]


def strip_session_cookies(cookie_header: str) -> str:
    """The Cookie header without the frontend's own session cookies."""
    kept = []
    for part in cookie_header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name not in OWN_COOKIES:
            kept.append(part.strip())
    return "; ".join(kept)


def items_of(data: Any) -> list[Json]:
    """A list answer, whether the service sends a bare list or `{"items": [...]}`."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return [d for d in data["items"] if isinstance(d, dict)]
    return []


def _error_from(response: httpx.Response, service: str) -> ApiError:
    status = response.status_code
    code, message, details = "", "", None
    try:
        error = response.json()["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        pass  # not our JSON error body (e.g. a proxy's plain-text 503)
    if status >= 500:
        log.warning("%s answered %s: %s %s", service, status, code, message)
        if status in (503, 504):
            return ApiError(status, code or "dependency_unavailable", message or f"{service} is unavailable")
        return ApiError(502, "bad_gateway", f"{service} failed to answer")
    headers = {"Retry-After": response.headers["retry-after"]} if "retry-after" in response.headers else None
    return ApiError(status, code or "error", message or f"{service} answered {status}", details, headers)


class Neighbours:
    def __init__(self, request: Request, identity: dict[str, str]) -> None:
        self.request = request
        self.settings = app_state(request).settings
        self.identity = identity

    def _outgoing_headers(self) -> dict[str, str]:
        headers = forwarded_headers()
        # Identity comes only from a token the frontend verified: what a client sent as its token, user id or
        # group never goes downstream (an anonymous visitor could otherwise claim any user or group).
        # Routing headers a client sets on purpose (`canary`, `user-agent`, the `canary` cookie) do.
        for name in IDENTITY_HEADERS:
            headers.pop(name, None)
        cookie = strip_session_cookies(headers.pop("cookie", ""))
        if cookie:
            headers["cookie"] = cookie
        headers.update(self.identity)
        return headers

    async def call(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        base = getattr(self.settings, f"{service}_url").rstrip("/")
        token = forwarded_var.set(self._outgoing_headers())
        try:
            response: httpx.Response = await app_state(self.request).http.request(
                method, base + path, **kwargs
            )
        finally:
            forwarded_var.reset(token)
        if response.status_code >= 400:
            raise _error_from(response, service)
        return response

    async def json(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(service, method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(502, "bad_gateway", f"{service} sent an unreadable answer") from exc

    # auth
    async def register(self, body: Json) -> Json:
        result: Json = await self.json("auth", "POST", "/auth/register", json=body)
        return result

    async def login(self, email: str, password: str) -> Json:
        result: Json = await self.json(
            "auth", "POST", "/auth/login", json={"email": email, "password": password}
        )
        return result

    async def refresh(self, refresh_token: str) -> Json | None:
        """A new token pair, or None when the refresh token is no longer accepted."""
        try:
            result: Json = await self.json(
                "auth", "POST", "/auth/refresh", json={"refresh_token": refresh_token}
            )
        except ApiError as exc:
            if exc.status < 500 and exc.status != 429:
                return None
            raise
        return result

    # product (the answering version is kept for the banner: a canary split is visible in the browser)
    async def products(self, page: int, page_size: int, category: str = "", q: str = "") -> Json:
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        if category:
            params["category"] = category
        if q:
            params["q"] = q
        response = await self.call("product", "GET", "/products", params=params)
        self._remember_product_version(response)
        data = response.json()
        return data if isinstance(data, dict) else {"items": items_of(data), "page": page, "total": 0}

    async def product(self, product_id: str) -> Json:
        response = await self.call("product", "GET", f"/products/{quote(product_id, safe='')}")
        self._remember_product_version(response)
        result: Json = response.json()
        return result

    async def categories(self) -> list[Json]:
        """Product's categories, reused for `categories_cache_seconds` by every page this process serves
        (one call to product per catalog page instead of two: a third of the frontend's CPU per page)."""
        state = app_state(self.request)
        cached: tuple[float, list[Json]] | None = getattr(state, "categories_cache", None)
        now = time.monotonic()
        if cached is not None and now < cached[0]:
            return cached[1]
        categories = await self._fetch_categories()
        state.categories_cache = (now + self.settings.categories_cache_seconds, categories)
        return categories

    async def _fetch_categories(self) -> list[Json]:
        data = await self.json("product", "GET", "/categories")
        raw = data.get("items", data.get("categories", [])) if isinstance(data, dict) else data
        categories = []
        for entry in raw if isinstance(raw, list) else []:
            if isinstance(entry, str):
                categories.append({"id": entry, "name": entry.replace("-", " ").capitalize()})
            elif isinstance(entry, dict):
                ident = str(entry.get("id") or entry.get("slug") or entry.get("name") or "")
                categories.append({"id": ident, "name": str(entry.get("name") or ident)})
        return [c for c in categories if c["id"]]

    def _remember_product_version(self, response: httpx.Response) -> None:
        if served_by := response.headers.get("x-served-by"):
            self.request.scope[PRODUCT_SERVED_BY] = served_by

    # user
    async def addresses(self) -> list[Json]:
        return items_of(await self.json("user", "GET", "/users/me/addresses"))

    async def profile(self) -> Json:
        result: Json = await self.json("user", "GET", "/users/me")
        return result

    async def update_profile(self, name: str, phone: str | None) -> Json:
        result: Json = await self.json("user", "PUT", "/users/me", json={"name": name, "phone": phone})
        return result

    async def add_address(self, address: Json) -> Json:
        result: Json = await self.json("user", "POST", "/users/me/addresses", json=address)
        return result

    async def delete_address(self, address_id: str) -> None:
        await self.call("user", "DELETE", f"/users/me/addresses/{quote(address_id, safe='')}")

    # order
    async def cart(self) -> Json:
        data = await self.json("order", "GET", "/cart")
        return data if isinstance(data, dict) else {"items": items_of(data)}

    async def add_to_cart(self, product_id: str, quantity: int) -> Json:
        body = {"product_id": product_id, "quantity": quantity}
        result: Json = await self.json("order", "POST", "/cart/items", json=body)
        return result

    async def set_quantity(self, product_id: str, quantity: int) -> Json:
        path = f"/cart/items/{quote(product_id, safe='')}"
        result: Json = await self.json("order", "PUT", path, json={"quantity": quantity})
        return result

    async def remove_from_cart(self, product_id: str) -> Json:
        result: Json = await self.json("order", "DELETE", f"/cart/items/{quote(product_id, safe='')}")
        return result

    async def checkout(self, idempotency_key: str, body: Json) -> Json:
        headers = {"Idempotency-Key": idempotency_key}
        result: Json = await self.json("order", "POST", "/orders", json=body, headers=headers)
        return result

    async def orders(self) -> list[Json]:
        return items_of(await self.json("order", "GET", "/orders"))

    async def order(self, order_id: str) -> Json:
        result: Json = await self.json("order", "GET", f"/orders/{quote(order_id, safe='')}")
        return result

    # notification
    async def notifications(self) -> list[Json]:
        return items_of(await self.json("notification", "GET", "/notifications"))
