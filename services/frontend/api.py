"""The JSON API under /api/ (load tests, cluster smoke tests): `Authorization: Bearer` or the session cookie.

Cookie-authenticated writes must send the CSRF cookie's value in `X-CSRF-Token`; Bearer callers need not.
Errors use the kit's JSON body; downstream errors keep their status and code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.contracts import CartItemIn, CheckoutIn
from services.frontend.clients import PRODUCT_SERVED_BY, Neighbours
from services.frontend.forms import LoginIn, RegisterIn
from services.frontend.session import CSRF_HEADER, Session, check_csrf, resolve_session, start_session
from services.kit.errors import ApiError, documents

router = APIRouter(prefix="/api", tags=["shop API"])
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=128)]


@documents(
    {401: "unauthorized: log in first", 403: "csrf_failed: a cookie-authenticated write without X-CSRF-Token"}
)
async def shopper(request: Request) -> Session:
    """The logged-in caller (401 otherwise); cookie-authenticated writes need the CSRF header."""
    session = await resolve_session(request)
    if not session.logged_in:
        raise ApiError(401, "unauthorized", "log in first", headers={"WWW-Authenticate": "Bearer"})
    if session.via_cookie and request.method not in {"GET", "HEAD", "OPTIONS"}:
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return session


def _neighbours(request: Request, session: Session) -> Neighbours:
    return Neighbours(request, session.identity_headers)


REPLAYED = "Idempotent-Replayed"  # order's mark of an idempotent replay (docs/architecture.md)


async def _relay(neighbours: Neighbours, service: str, method: str, path: str, **kwargs: Any) -> JSONResponse:
    """The downstream answer with its status (e.g. 201 Created) and `Idempotent-Replayed`, if any."""
    response = await neighbours.call(service, method, path, **kwargs)
    replayed = response.headers.get(REPLAYED)
    return JSONResponse(
        response.json() if response.content else {},
        status_code=response.status_code,
        headers={REPLAYED: replayed} if replayed else None,
    )


@router.post(
    "/register",
    status_code=201,
    summary="Create an account",
    responses={409: {"description": "email_taken"}},
)
async def register(request: Request, body: RegisterIn) -> JSONResponse:
    return await _relay(Neighbours(request, {}), "auth", "POST", "/auth/register", json=body.model_dump())


@router.post(
    "/login",
    summary="Log in: the token pair (also set as session cookies)",
    responses={401: {"description": "invalid_credentials"}, 429: {"description": "too_many_attempts"}},
)
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    tokens: dict[str, Any] = await Neighbours(request, {}).login(body.email, body.password)
    await start_session(request, tokens)
    return tokens


@router.get("/products", summary="Browse the catalog (`x-product-served-by` names the product version)")
async def products(
    request: Request,
    response: Response,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    category: Annotated[str, Query(max_length=60)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    session: Session = Depends(resolve_session),
) -> dict[str, Any]:
    result = await _neighbours(request, session).products(page, page_size, category, q.strip())
    _name_product_version(request, response)
    return result


@router.get(
    "/products/{product_id}", summary="One product", responses={404: {"description": "product_not_found"}}
)
async def product(
    request: Request, response: Response, product_id: str, session: Session = Depends(resolve_session)
) -> dict[str, Any]:
    result = await _neighbours(request, session).product(product_id)
    _name_product_version(request, response)
    return result


def _name_product_version(request: Request, response: Response) -> None:
    """Which product build answered, so a canary split is visible to API clients too."""
    if served_by := request.scope.get(PRODUCT_SERVED_BY):
        response.headers["x-product-served-by"] = str(served_by)


@router.get("/cart", summary="The caller's cart")
async def cart(request: Request, session: Session = Depends(shopper)) -> dict[str, Any]:
    return await _neighbours(request, session).cart()


@router.post(
    "/cart/items",
    summary="Add a product to the cart",
    responses={
        404: {"description": "product_not_found"},
        409: {"description": "insufficient_stock, quantity_limit"},
    },
)
async def add_item(request: Request, body: CartItemIn, session: Session = Depends(shopper)) -> JSONResponse:
    return await _relay(_neighbours(request, session), "order", "POST", "/cart/items", json=body.model_dump())


@router.post(
    "/checkout",
    status_code=201,
    summary="Place the order (the same Idempotency-Key gives the same order)",
    responses={
        400: {"description": "invalid_idempotency_key"},
        402: {"description": "card_declined, insufficient_funds"},
        409: {"description": "cart_empty, insufficient_stock, idempotency_key_reused, checkout_in_progress"},
    },
)
async def checkout(
    request: Request, body: CheckoutIn, idempotency_key: IdempotencyKey, session: Session = Depends(shopper)
) -> JSONResponse:
    headers = {"Idempotency-Key": idempotency_key}
    return await _relay(
        _neighbours(request, session), "order", "POST", "/orders", json=body.model_dump(), headers=headers
    )


@router.get("/orders", summary="The caller's orders")
async def orders(request: Request, session: Session = Depends(shopper)) -> dict[str, Any]:
    return {"items": await _neighbours(request, session).orders()}


@router.get(
    "/orders/{order_id}",
    summary="One order with its status history",
    responses={404: {"description": "order_not_found"}},
)
async def order(request: Request, order_id: str, session: Session = Depends(shopper)) -> dict[str, Any]:
    return await _neighbours(request, session).order(order_id)


@router.get("/notifications", summary="The caller's notifications, newest first")
async def notifications(request: Request, session: Session = Depends(shopper)) -> dict[str, Any]:
    return {"items": await _neighbours(request, session).notifications()}
