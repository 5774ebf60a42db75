"""The web shop's page routes (HTML). Every form posts with a CSRF token and redirects after success (303).

Rendering (templates, filters, error pages) is in `rendering.py`; calls to other services in `clients.py`.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.contracts import CheckoutIn, SavedAddress
from services.frontend.clients import NOTICE_COOKIE, Neighbours
from services.frontend.forms import LoginIn, ProfileIn, RegisterIn, parse_form, plain_errors
from services.frontend.rendering import cart_view, render
from services.frontend.session import (
    CANARY_COOKIE,
    CSRF_FIELD,
    Session,
    check_csrf,
    clear_session,
    queue_cookie,
    resolve_session,
    start_session,
)
from services.frontend.settings import Settings
from services.kit.deps import AppSettings
from services.kit.errors import ApiError

router = APIRouter(include_in_schema=False)


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _redirect(request: Request, path: str, notice: str = "") -> RedirectResponse:
    """A 303 to `path` (post/redirect/get), with a one-off notice the next page shows ("Added to your
    cart."): a flash cookie that page clears, so a reload does not show it again."""
    if notice:
        queue_cookie(request, NOTICE_COOKIE, notice, 60)
    return RedirectResponse(path, status_code=303)


async def _form(request: Request) -> dict[str, Any]:
    """The posted form after the CSRF check."""
    form = dict(await request.form())
    check_csrf(request, str(form.pop(CSRF_FIELD, "")) or None)
    return {k: v.strip() if isinstance(v, str) else v for k, v in form.items()}


async def _shopper(request: Request) -> Session:
    session = await resolve_session(request)
    if not session.logged_in:
        raise ApiError(401, "unauthorized", "please log in")
    return session


def _neighbours(request: Request, session: Session) -> Neighbours:
    return Neighbours(request, session.identity_headers)


# --- catalog -------------------------------------------------------------------------------------


@router.get("/")
async def catalog(
    request: Request, settings: AppSettings[Settings], session: Session = Depends(resolve_session)
) -> Response:
    params = request.query_params
    page = _int(params.get("page"), 1, 1, 10_000)
    category = params.get("category", "")[:60]
    q = params.get("q", "").strip()[:100]
    neighbours = _neighbours(request, session)
    categories = await neighbours.categories()
    result = await neighbours.products(page, settings.page_size, category, q)
    products = result.get("items", [])
    total = int(result.get("total") or 0)
    pages = max(1, -(-total // settings.page_size))

    def link(to_page: int) -> str:
        query = {k: v for k, v in {"category": category, "q": q, "page": to_page}.items() if v}
        return "/?" + urlencode(query)

    if page > pages:  # "Page 99 of 3": show the last page instead
        return RedirectResponse(link(pages), status_code=303)
    recommended: list[dict[str, Any]] = []
    if settings.variant == "beta-features":
        recommended = [p for p in products if p.get("badge")][:4] or products[:3]

    heading = next((c["name"] for c in categories if c["id"] == category), category)
    return render(
        request,
        "catalog.html",
        heading=heading,
        products=products,
        categories=categories,
        category=category,
        q=q,
        page=page,
        pages=pages,
        total=total,
        link=link,
        recommended=recommended,
    )


@router.get("/products/{product_id}")
async def product_page(
    request: Request, product_id: str, session: Session = Depends(resolve_session)
) -> Response:
    product = await _neighbours(request, session).product(product_id)
    return render(request, "product.html", product=product)


@router.get("/images/{name}.svg")
async def image(request: Request, name: str) -> Response:
    """A catalog image from the product service (no session needed: it is the same for everyone)."""
    if not name.replace("-", "").isalnum():
        raise ApiError(404, "not_found", "no such image")
    response = await Neighbours(request, {}).call("product", "GET", f"/products/images/{name}.svg")
    cache = response.headers.get("cache-control", "public, max-age=3600")
    return Response(response.content, media_type="image/svg+xml", headers={"Cache-Control": cache})


# --- account -------------------------------------------------------------------------------------


@router.get("/register")
async def register_form(request: Request, session: Session = Depends(resolve_session)) -> Response:
    return render(
        request, "register.html", values={}, errors={}, next=_safe_next(request.query_params.get("next"))
    )


@router.post("/register")
async def register(request: Request, session: Session = Depends(resolve_session)) -> Response:
    form = await _form(request)
    target = _safe_next(form.pop("next", None))
    form["beta_tester"] = form.get("beta_tester") == "on"
    values = {k: v for k, v in form.items() if k != "password"}
    data, errors = parse_form(RegisterIn, form)
    if data is None:
        return render(request, "register.html", 422, values=values, errors=errors, next=target)
    neighbours = _neighbours(request, Session())
    try:
        await neighbours.register(data.model_dump())
    except ApiError as exc:
        if exc.status == 409:
            errors = {"email": "An account with this email already exists. Log in instead?"}
        elif exc.status == 422:
            errors = {"form": "Please check your details: " + exc.message}
        else:
            raise
        return render(request, "register.html", exc.status, values=values, errors=errors, next=target)
    return await _log_in(request, neighbours, data.email, data.password, target, "welcome")


@router.get("/login")
async def login_form(request: Request, session: Session = Depends(resolve_session)) -> Response:
    return render(
        request, "login.html", values={}, errors={}, next=_safe_next(request.query_params.get("next"))
    )


@router.post("/login")
async def login(request: Request, session: Session = Depends(resolve_session)) -> Response:
    form = await _form(request)
    target = _safe_next(form.pop("next", None))
    values = {"email": form.get("email", "")}
    data, errors = parse_form(LoginIn, form)
    if data is None:
        return render(request, "login.html", 422, values=values, errors=errors, next=target)
    try:
        return await _log_in(request, _neighbours(request, Session()), data.email, data.password, target, "")
    except ApiError as exc:
        if exc.status == 401:
            errors = {"form": "That email and password do not match an account."}
        elif exc.status == 429:
            wait = (exc.headers or {}).get("Retry-After", "a few")
            errors = {"form": f"Too many attempts. Please wait {wait} seconds and try again."}
        else:
            raise
        return render(request, "login.html", exc.status, values=values, errors=errors, next=target)


async def _log_in(
    request: Request, neighbours: Neighbours, email: str, password: str, target: str, notice: str
) -> Response:
    await start_session(request, await neighbours.login(email, password))
    return _redirect(request, target, notice)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    clear_session(request)
    return _redirect(request, "/", "logged_out")


@router.post("/canary")
async def canary(request: Request) -> Response:
    """Join or leave the canary: the `canary=true` cookie travels with every call to the services."""
    form = await _form(request)
    join = form.get("join") == "true"
    queue_cookie(request, CANARY_COOKIE, "true" if join else None, 86400)
    return _redirect(request, _safe_next(str(form.get("next", "/"))), "canary_on" if join else "canary_off")


# --- cart and checkout ---------------------------------------------------------------------------


@router.get("/cart")
async def cart_page(request: Request, session: Session = Depends(_shopper)) -> Response:
    cart = cart_view(await _neighbours(request, session).cart())
    return render(request, "cart.html", cart=cart)


@router.post("/cart/items")
async def add_to_cart(request: Request) -> Response:
    form = await _form(request)
    product_id = str(form.get("product_id", ""))[:100]
    session = await resolve_session(request)
    if not session.logged_in:  # say why the shopper lands on the login page, and come back afterwards
        return _redirect(request, f"/login?next={quote('/products/' + product_id, safe='')}", "login_to_add")
    quantity = _int(str(form.get("quantity", "1")), 1, 1, 99)
    if not product_id:
        raise ApiError(400, "bad_request", "no product chosen")
    neighbours = _neighbours(request, session)
    try:
        await neighbours.add_to_cart(product_id, quantity)
    except ApiError as exc:
        if exc.status != 409:
            raise
        product = await neighbours.product(product_id)  # the page again, the quantity field marked
        errors = {"quantity": _stock_message(exc)}
        return render(request, "product.html", 409, product=product, errors=errors, quantity=quantity)
    return _redirect(request, "/cart", "added")


def _stock_message(exc: ApiError) -> str:
    """Plain words for order's 409 on a cart change (more than in stock, more than 99, a race)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.code == "insufficient_stock" and "available" in details:
        available, requested = details["available"], details.get("requested")
        if not available:
            return "Sorry, this product is sold out."
        asked = f"You asked for {requested}; " if requested else ""
        return f"{asked}only {available} left in stock. Please choose {available} or fewer."
    if exc.code == "quantity_limit":
        return "At most 99 of a product per order."
    return "Your cart changed meanwhile. Please try again."


@router.post("/cart/items/{product_id}")
async def change_quantity(
    request: Request, product_id: str, session: Session = Depends(_shopper)
) -> Response:
    form = await _form(request)
    neighbours = _neighbours(request, session)
    quantity = str(form.get("quantity", ""))
    if not quantity.isdigit() or int(quantity) > 99:
        cart = cart_view(await neighbours.cart())
        return render(
            request, "cart.html", 422, cart=cart, error="Quantities are whole numbers from 0 to 99."
        )
    if int(quantity) == 0:
        await neighbours.remove_from_cart(product_id)
        return _redirect(request, "/cart", "removed")
    try:
        await neighbours.set_quantity(product_id, int(quantity))
    except ApiError as exc:
        if exc.status != 409:
            raise
        return render(
            request, "cart.html", 409, cart=cart_view(await neighbours.cart()), error=_stock_message(exc)
        )
    return _redirect(request, "/cart", "updated")


@router.post("/cart/items/{product_id}/remove")
async def remove_from_cart(
    request: Request, product_id: str, session: Session = Depends(_shopper)
) -> Response:
    await _form(request)
    await _neighbours(request, session).remove_from_cart(product_id)
    return _redirect(request, "/cart", "removed")


ADDRESS_FIELDS = ("name", "street", "city", "postal_code", "country")
# Outcomes that may still become a purchase: the retry must reuse the key (services/order/README.md).
PENDING_REASONS = {
    "payment_outcome_unknown": "the payment was not confirmed in time",
    "checkout_in_progress": "your order is still being processed",
}
RETRY_ADVICE = "Please press “Place order” again: it is safe, you will never be charged twice."


@router.get("/checkout")
async def checkout_form(request: Request, session: Session = Depends(_shopper)) -> Response:
    neighbours = _neighbours(request, session)
    cart = cart_view(await neighbours.cart())
    if not cart["lines"]:
        return _redirect(request, "/cart", "empty")
    values: dict[str, Any] = {}
    try:  # pre-fill from the address book; checkout still works while the user service is down
        addresses = await neighbours.addresses()
        values = {k: addresses[0].get(k, "") for k in ADDRESS_FIELDS} if addresses else {}
    except ApiError:
        pass
    return _checkout(request, cart, values, {}, 200)


def _checkout(
    request: Request,
    cart: dict[str, Any],
    values: dict[str, Any],
    errors: dict[str, str],
    status: int,
    key: str | None = None,
) -> Response:
    # A fresh key per rendered form: a double-clicked submit is one order, a retry after a decline a new
    # one. After an outage the same key is kept, so retrying cannot buy twice.
    key = key or uuid.uuid4().hex
    return render(
        request, "checkout.html", status, cart=cart, values=values, errors=errors, idempotency_key=key
    )


@router.post("/checkout")
async def checkout(request: Request, session: Session = Depends(_shopper)) -> Response:
    form = await _form(request)
    neighbours = _neighbours(request, session)
    key = str(form.get("idempotency_key", ""))
    values = {k: form.get(k, "") for k in ADDRESS_FIELDS}
    values["country"] = str(values["country"]).upper()  # a shopper may type "nl"; the contract wants NL
    body = {
        "shipping_address": values,
        "card": {
            "number": form.get("card_number", ""),
            "expiry": form.get("expiry", ""),
            "cvc": form.get("cvc", ""),
        },
    }
    data, errors = parse_form(CheckoutIn, body)
    if data is None or not 8 <= len(key) <= 128:
        errors = errors or {"form": "The form expired; please submit it again."}
        return _checkout(request, cart_view(await neighbours.cart()), values, errors, 422)
    try:
        order = await neighbours.checkout(key, data.model_dump())
    except ApiError as exc:
        if exc.status >= 500 or exc.code == "checkout_in_progress":
            try:
                cart = cart_view(await neighbours.cart())
            except ApiError:
                raise exc from None  # the order service itself is down: the friendly 503 page
            reason = PENDING_REASONS.get(exc.code, exc.message)
            retry = {"form": f"We could not confirm your order yet ({reason}). {RETRY_ADVICE}"}
            return _checkout(request, cart, values, retry, exc.status, key)
        if exc.status not in (402, 409, 422):
            raise
        cart = cart_view(await neighbours.cart())
        return _checkout(request, cart, values, _checkout_errors(exc), exc.status)
    return _redirect(request, f"/orders/{quote(str(order['id']), safe='')}", "placed")


DECLINES = {
    "card_declined": "Your card was declined. Please try another card.",
    "insufficient_funds": "The card has insufficient funds. Please try another card.",
}


def _checkout_errors(exc: ApiError) -> dict[str, str]:
    """Why the order service (or payment behind it) refused, on the field it concerns, in plain words."""
    if exc.status == 402:
        declined = DECLINES.get(exc.code, "The payment was refused. Please try another card.")
        return {"card_number": declined, "form": "The payment did not go through."}
    if exc.status == 422 and isinstance(exc.details, list):
        fields = plain_errors([d for d in exc.details if isinstance(d, dict)])
        return {**fields, "form": "Please check the highlighted fields."}
    if exc.code == "insufficient_stock":
        return {"form": f"Some items are no longer in stock ({exc.message}). Please change your cart."}
    return {"form": "Your order could not be placed. Please check your cart and try again."}


# --- orders and notifications --------------------------------------------------------------------


@router.get("/orders")
async def orders_page(request: Request, session: Session = Depends(_shopper)) -> Response:
    orders = await _neighbours(request, session).orders()
    return render(request, "orders.html", orders=orders)


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str, session: Session = Depends(_shopper)) -> Response:
    order = await _neighbours(request, session).order(order_id)
    return render(request, "order.html", order=order)


@router.get("/notifications")
async def notifications_page(request: Request, session: Session = Depends(_shopper)) -> Response:
    notifications = await _neighbours(request, session).notifications()
    return render(request, "notifications.html", notifications=notifications)


# --- account: profile and address book (the user service's API) ---------------------------------------

ADDRESS_FORM_FIELDS = ("label", *ADDRESS_FIELDS)


async def _account(
    request: Request,
    neighbours: Neighbours,
    status: int = 200,
    profile_values: dict[str, Any] | None = None,
    profile_errors: dict[str, str] | None = None,
    address_values: dict[str, Any] | None = None,
    address_errors: dict[str, str] | None = None,
) -> Response:
    profile = await neighbours.profile()
    addresses = await neighbours.addresses()
    return render(
        request,
        "account.html",
        status,
        profile=profile,
        addresses=addresses,
        profile_values=profile_values
        or {"name": profile.get("name", ""), "phone": profile.get("phone") or ""},
        profile_errors=profile_errors or {},
        address_values=address_values or {},
        address_errors=address_errors or {},
    )


@router.get("/account")
async def account_page(request: Request, session: Session = Depends(_shopper)) -> Response:
    return await _account(request, _neighbours(request, session))


@router.post("/account")
async def save_profile(request: Request, session: Session = Depends(_shopper)) -> Response:
    form = await _form(request)
    values = {"name": form.get("name", ""), "phone": form.get("phone", "")}
    data, errors = parse_form(ProfileIn, {"name": values["name"], "phone": values["phone"] or None})
    neighbours = _neighbours(request, session)
    if data is None:
        return await _account(request, neighbours, 422, profile_values=values, profile_errors=errors)
    try:
        await neighbours.update_profile(data.name, data.phone)
    except ApiError as exc:
        if exc.status != 422 or not isinstance(exc.details, list):
            raise
        errors = plain_errors(exc.details)
        return await _account(request, neighbours, 422, profile_values=values, profile_errors=errors)
    return _redirect(request, "/account", "profile_saved")


@router.post("/account/addresses")
async def add_address(request: Request, session: Session = Depends(_shopper)) -> Response:
    form = await _form(request)
    values = {k: form.get(k, "") for k in ADDRESS_FORM_FIELDS}
    values["country"] = str(values["country"]).upper()  # a shopper may type "nl"; the contract wants NL
    data, errors = parse_form(SavedAddress, values)
    neighbours = _neighbours(request, session)
    if data is None:
        return await _account(request, neighbours, 422, address_values=values, address_errors=errors)
    try:
        await neighbours.add_address(data.model_dump())
    except ApiError as exc:
        if exc.status == 409:  # the address book is full
            errors = {"form": exc.message[:1].upper() + exc.message[1:] + "."}
        elif exc.status == 422 and isinstance(exc.details, list):
            errors = plain_errors(exc.details)
        else:
            raise
        return await _account(request, neighbours, exc.status, address_values=values, address_errors=errors)
    return _redirect(request, "/account", "address_added")


@router.post("/account/addresses/{address_id}/delete")
async def delete_address(request: Request, address_id: str, session: Session = Depends(_shopper)) -> Response:
    await _form(request)
    await _neighbours(request, session).delete_address(address_id)
    return _redirect(request, "/account", "address_removed")
