"""Rendering: templates, their filters, and friendly HTML error pages (JSON errors stay JSON under /api/ and
the operational paths). The routes that render them are in `page_routes.py`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.frontend.clients import NOTICE_COOKIE, PRODUCT_SERVED_BY, items_of
from services.frontend.session import CANARY_COOKIE, Session, csrf_token, queue_cookie
from services.kit.deps import app_state
from services.kit.errors import ApiError

log = logging.getLogger("frontend.rendering")
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£"}
TEST_CARDS = (
    ("4242 4242 4242 4242", "payment succeeds"),
    ("4000 0000 0000 0002", "card declined"),
    ("4000 0000 0000 9995", "insufficient funds"),
)


def money(cents: Any, currency: str = "EUR") -> str:
    try:
        amount = int(cents) / 100
    except (TypeError, ValueError):
        return ""
    sign = CURRENCY_SIGNS.get(str(currency).upper())
    return f"{sign}{amount:,.2f}" if sign else f"{amount:,.2f} {currency}"


def when(value: Any) -> str:
    """An ISO-8601 timestamp as '26 Nov 2026, 09:15:02 UTC'."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value or "")
    return moment.strftime("%d %b %Y, %H:%M:%S UTC")


def image_url(product: dict[str, Any]) -> str:
    """Product images live on the product service; the browser gets them through /images/ here."""
    image = str(product.get("image") or "")
    prefix = "/products/images/"
    return "/images/" + image[len(prefix) :] if image.startswith(prefix) else ""


_DICT_ATTRIBUTES = frozenset(dir(dict))
_jinja_getattr = templates.env.getattr


def _getattr(obj: Any, attribute: str) -> Any:
    """`p.name` on a plain dict, as Jinja2 resolves it, without Jinja2's first try, `getattr(dict, "name")`,
    which raises (and formats) an AttributeError for every field of every product on a page (40 % of the
    catalog page's render time). A dict's own attributes (`.items`, `.get`) still win over its keys."""
    if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
        try:
            return obj[attribute]
        except KeyError:
            pass
    return _jinja_getattr(obj, attribute)


templates.env.getattr = _getattr  # type: ignore[method-assign]
templates.env.filters["money"] = money
templates.env.filters["image_url"] = image_url
templates.env.filters["when"] = when


def cart_view(cart: dict[str, Any]) -> dict[str, Any]:
    """The order service's cart as lines with prices (tolerant of optional fields)."""
    lines: list[dict[str, Any]] = []
    for item in items_of(cart):
        product_id = str(item.get("product_id", ""))
        quantity = int(item.get("quantity") or 0)
        price = int(item.get("price_cents") or item.get("unit_price_cents") or 0)
        line = int(item.get("line_total_cents") or item.get("subtotal_cents") or price * quantity)
        name = str(item.get("name") or product_id)
        lines.append(
            {
                "product_id": product_id,
                "name": name,
                "quantity": quantity,
                "price_cents": price,
                "line_cents": line,
                "image": str(item.get("image") or ""),
            }
        )
    total = cart.get("subtotal_cents") or cart.get("total_cents") or sum(line["line_cents"] for line in lines)
    items = items_of(cart)
    currency = cart.get("currency") or (items[0].get("currency") if items else None) or "EUR"
    return {"lines": lines, "total_cents": int(total), "currency": str(currency)}


def banner(request: Request) -> dict[str, str]:
    settings = app_state(request).settings
    return {
        "variant": settings.variant,
        "version": settings.version,
        "product": str(request.scope.get(PRODUCT_SERVED_BY, "")),
    }


def _here(request: Request) -> str:
    """This page's path and query (where a footer form returns to)."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def take_notice(request: Request) -> str:
    """The one-off notice a redirect left in the flash cookie; cleared, so a reload shows nothing."""
    notice = request.cookies.get(NOTICE_COOKIE, "")
    if notice:
        queue_cookie(request, NOTICE_COOKIE, None)
    return notice


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    session: Session = request.scope.get("frontend.session") or Session()
    context.update(
        session=session,
        csrf=csrf_token(request),
        banner=banner(request),
        test_cards=TEST_CARDS,
        notice=take_notice(request),
        in_canary=request.cookies.get(CANARY_COOKIE) == "true",
        here=_here(request),
    )
    return templates.TemplateResponse(request, template, context, status_code=status)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in {"/healthz", "/readyz", "/metrics"} or path.startswith("/docs")


FRIENDLY = {
    400: ("That request did not look right", "Please go back and try again."),
    403: ("That did not work", "Your form expired or you are not allowed to do this. Please try again."),
    404: ("Not found", "We could not find what you were looking for."),
    409: ("That conflicts with something", "Please reload the page and try again."),
    429: ("Slow down a little", "Too many attempts. Please wait a moment and try again."),
    502: ("The shop is having trouble", "Part of the shop did not answer properly. Please try again soon."),
    503: ("The shop is temporarily unavailable", "Part of the shop is down. Please try again in a moment."),
    504: ("The shop is temporarily unavailable", "Part of the shop is too slow right now. Please try again."),
}


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    title, advice = FRIENDLY.get(status, FRIENDLY[503] if status >= 500 else FRIENDLY[400])
    if status < 500 and status != 404:
        advice = message or advice
    return render(request, "error.html", status=status, title=title, advice=advice, code=code)


def install_page_errors(app: FastAPI) -> None:
    """Browser paths get HTML error pages; /api/ and the operational paths keep the kit's JSON errors."""
    kit_handlers = dict(app.exception_handlers)

    def handler(kind: type[Exception]) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            if _wants_json(request):
                response: Response = await kit_handlers[kind](request, exc)
                return response
            if isinstance(exc, ApiError):
                return error_page(request, exc.status, exc.code, exc.message)
            if isinstance(exc, StarletteHTTPException):
                return error_page(request, exc.status_code, "error", "")
            if isinstance(exc, RequestValidationError):
                return error_page(request, 400, "bad_request", "")
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_page(request, 500, "internal_error", "")

        return handle

    for kind in (ApiError, StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, handler(kind))
