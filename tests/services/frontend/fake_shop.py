"""A fake of the services the frontend calls (auth, user, product, order, notification), per the contract
in docs/architecture.md, and the helpers the frontend tests share. It records every request so tests can
check forwarded headers. The fixtures that hand it out are in conftest.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.contracts import CardIn
from services.frontend.app import build_app
from services.frontend.settings import Settings
from services.kit.http import ServiceClient
from services.kit.testing import TokenFactory

URLS = {f"{name}_url": f"http://{name}.test" for name in ("auth", "user", "product", "order", "notification")}
PRODUCTS = [
    {
        "id": f"mug-{n}",
        "name": f"Mug {n}",
        "description": "A sturdy mug.",
        "category": "kitchen" if n % 2 else "coffee",
        "price_cents": 1000 + n,
        "currency": "EUR",
        "stock": 5,
        "image": "/products/images/kitchen.svg",
        "icon": "☕",
        **({"badge": "new"} if n == 3 else {}),
    }
    for n in range(1, 16)
]
DECLINED = "4000000000000002"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _error(status: int, code: str, message: str, details: Any = None) -> httpx.Response:
    return _json(status, {"error": {"code": code, "message": message, "details": details}})


@dataclass
class FakeShop:
    tokens: TokenFactory = field(default_factory=TokenFactory)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> user
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> email
    carts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # services that refuse connections
    failing: dict[str, int] = field(default_factory=dict)  # service -> status it answers everything with
    errors: dict[str, httpx.Response] = field(default_factory=dict)  # exact path -> canned answer
    product_version: str = "v2"
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> profile with addresses

    def calls(self, service: str, path: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == f"{service}.test" and r.url.path.startswith(path)]

    def access_token(self, email: str, expires_in: int = 300) -> str:
        user = self.users[email]
        return self.tokens.token(sub=user["id"], email=email, groups=user["groups"], expires_in=expires_in)

    def token_pair(self, email: str, expires_in: int = 300) -> dict[str, Any]:
        refresh = uuid.uuid4().hex
        self.refresh_tokens[refresh] = email
        access = self.access_token(email, expires_in)
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": 900}

    def add_user(
        self, email: str, password: str = "secret-pass", groups: tuple[str, ...] = ("customer",)
    ) -> None:
        self.users[email] = {
            "id": uuid.uuid4().hex,
            "email": email,
            "name": "Ada",
            "password": password,
            "groups": list(groups),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        service = request.url.host.removesuffix(".test")
        if service in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if service in self.failing:
            return httpx.Response(self.failing[service], text="upstream connect error")
        if request.url.path in self.errors:
            return self.errors[request.url.path]
        body = json.loads(request.content) if request.content else {}
        handler = getattr(self, f"_{service}")
        response: httpx.Response = handler(request, request.url.path, body)
        response.headers["x-served-by"] = (
            f"{service}/{self.product_version if service == 'product' else 'v1'}"
        )
        return response

    def _auth(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "/auth/register":
            if body["email"] in self.users:
                return _error(409, "email_taken", "an account with this email exists")
            self.add_user(
                body["email"],
                body["password"],
                ("customer", "beta") if body.get("beta_tester") else ("customer",),
            )
            user = self.users[body["email"]]
            return _json(201, {k: user[k] for k in ("id", "email", "name", "groups")})
        if path == "/auth/login":
            user = self.users.get(body["email"])
            if user is None or user["password"] != body["password"]:
                return _error(401, "invalid_credentials", "wrong email or password")
            return _json(200, self.token_pair(body["email"]))
        if path == "/auth/refresh":
            email = self.refresh_tokens.pop(body["refresh_token"], None)
            if email is None:
                return _error(401, "invalid_refresh_token", "refresh token is not valid")
            return _json(200, self.token_pair(email))
        return _error(404, "not_found", path)

    def _product(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "/categories":
            return _json(
                200,
                {"items": [{"id": "kitchen", "name": "Kitchen"}, {"id": "coffee", "name": "Coffee & Tea"}]},
            )
        if path == "/products":
            params = request.url.params
            page, size = int(params.get("page", 1)), int(params.get("page_size", 20))
            found = [p for p in PRODUCTS if params.get("category", p["category"]) == p["category"]]
            found = [p for p in found if params.get("q", "").lower() in p["name"].lower()]
            return _json(
                200,
                {
                    "items": found[(page - 1) * size : page * size],
                    "page": page,
                    "page_size": size,
                    "total": len(found),
                },
            )
        if path.startswith("/products/images/"):
            return httpx.Response(
                200,
                content=b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                headers={"content-type": "image/svg+xml"},
            )
        product = next((p for p in PRODUCTS if path == f"/products/{p['id']}"), None)
        return _json(200, product) if product else _error(404, "product_not_found", "no such product")

    def _user_id(self, request: httpx.Request) -> str:
        return str(request.headers.get("x-user-id"))

    def _order(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        if "authorization" not in request.headers:
            return _error(401, "unauthorized", "missing bearer token")
        cart = self.carts.setdefault(self._user_id(request), [])
        if path == "/cart":
            subtotal = sum(i["line_total_cents"] for i in cart)
            return _json(
                200, {"items": cart, "item_count": len(cart), "subtotal_cents": subtotal, "currency": "EUR"}
            )
        if path == "/cart/items" and request.method == "POST":
            product = next((p for p in PRODUCTS if p["id"] == body["product_id"]), None)
            if product is None:
                return _error(404, "product_not_found", "no such product")
            if body["quantity"] > product["stock"]:  # as order answers it
                details = {
                    "product_id": product["id"],
                    "available": product["stock"],
                    "requested": body["quantity"],
                }
                return _error(409, "insufficient_stock", f"only {product['stock']} available", details)
            line = {
                "product_id": product["id"],
                "name": product["name"],
                "price_cents": product["price_cents"],
                "image": product["image"],
            }
            cart.append(
                {
                    **line,
                    "quantity": body["quantity"],
                    "line_total_cents": product["price_cents"] * body["quantity"],
                }
            )
            return _json(201, {"items": cart})
        if match := re.fullmatch(r"/cart/items/([\w-]+)", path):
            item = next((i for i in cart if i["product_id"] == match.group(1)), None)
            if item is None:
                return _error(404, "not_in_cart", "product is not in the cart")
            if request.method == "DELETE":
                cart.remove(item)
            else:
                item["quantity"] = body["quantity"]
                item["line_total_cents"] = item["price_cents"] * body["quantity"]
            return _json(200, {"items": cart})
        if path == "/orders" and request.method == "POST":
            return self._checkout(request, body, cart)
        if path == "/orders":
            return _json(
                200, {"items": [o for o in self.orders.values() if o["user"] == self._user_id(request)]}
            )
        order = self.orders.get(path.removeprefix("/orders/"))
        if order is None or order["user"] != self._user_id(request):
            return _error(404, "order_not_found", "no such order")
        return _json(200, order)

    def _checkout(
        self, request: httpx.Request, body: dict[str, Any], cart: list[dict[str, Any]]
    ) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "idempotency_key_required", "Idempotency-Key header is required")
        if key in self.by_key:  # like the order service: the recorded order, marked as a replay
            return _json(201, self.orders[self.by_key[key]], {"Idempotent-Replayed": "true"})
        if not cart:
            return _error(409, "cart_empty", "the cart is empty")
        try:  # the card rules order applies (payment's), with the kit's 422 details
            CardIn.model_validate(body["card"])
        except ValidationError as exc:
            details = [
                {"loc": ["body", "card", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            return _error(422, "validation_error", "request did not validate", details)
        order_id = uuid.uuid4().hex
        failed = body["card"]["number"] == DECLINED
        status = "failed" if failed else "paid"
        order = {
            "id": order_id,
            "user": self._user_id(request),
            "status": status,
            "items": list(cart),
            "status_history": [
                {"status": "pending", "at": "2026-11-26T09:00:00Z"},
                {"status": status, "at": "2026-11-26T09:00:01Z"},
            ],
            "subtotal_cents": sum(i["line_total_cents"] for i in cart),
            "shipping_cents": 495,
            "currency": "EUR",
            "total_cents": sum(i["line_total_cents"] for i in cart) + 495,
            "failure_reason": "card_declined" if failed else None,
            "payment_id": None if failed else "pay-1",
            "shipment_id": None if failed else "ship-1",
            "tracking_number": None if failed else "TRK123456",
            "created_at": "2026-11-26T09:00:00Z",
        }
        self.orders[order_id] = order
        self.by_key[key] = order_id
        if failed:
            return _error(402, "card_declined", "the card was declined", {"order_id": order_id})
        cart.clear()
        return _json(201, order)

    def _notification(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        return _json(
            200,
            {
                "items": [
                    {
                        "id": "n1",
                        "kind": "order_confirmation",
                        "subject": "Your order is confirmed",
                        "body": "Thanks!",
                        "order_id": "o1",
                        "created_at": "2026-11-26T09:00:00Z",
                    }
                ]
            },
        )

    def _user(self, request: httpx.Request, path: str, body: dict[str, Any]) -> httpx.Response:
        """The user service's profile and address book, per the token's user."""
        user_id = self._user_id(request)
        address = {
            "id": "a1",
            "label": "home",
            "name": "Ada Lovelace",
            "street": "Kerkstraat 1",
            "city": "Amsterdam",
            "postal_code": "1017 GA",
            "country": "NL",
        }
        email = next((u["email"] for u in self.users.values() if u["id"] == user_id), "x@example.com")
        profile = self.profiles.setdefault(
            user_id, {"id": user_id, "email": email, "name": "Ada", "phone": None, "addresses": [address]}
        )
        if path == "/users/me" and request.method == "PUT":
            profile.update(name=body["name"], phone=body.get("phone"))
        if path == "/users/me":
            return _json(200, {k: v for k, v in profile.items() if k != "addresses"})
        if path == "/users/me/addresses" and request.method == "POST":
            if len(body.get("country", "")) != 2:  # as the user service would refuse it
                details = [
                    {
                        "loc": ["body", "country"],
                        "msg": "String should match pattern",
                        "type": "string_pattern_mismatch",
                    }
                ]
                return _error(422, "validation_error", "request did not validate", details)
            added = {"id": uuid.uuid4().hex[:8], **body}
            profile["addresses"].append(added)
            return _json(201, added)
        if request.method == "DELETE":
            address_id = path.rsplit("/", 1)[-1]
            profile["addresses"] = [a for a in profile["addresses"] if a["id"] != address_id]
            return httpx.Response(204)
        return _json(200, profile["addresses"])


def make_client(fake: FakeShop, **settings: Any) -> Iterator[TestClient]:
    app = build_app(Settings(session_secret="test-secret", **{**URLS, **settings}))
    with TestClient(app) as client:
        app.state.http = ServiceClient(app.state.settings, transport=httpx.MockTransport(fake.handle))
        fake.tokens.trust_in(app)
        yield client


def csrf(client: TestClient) -> str:
    """The CSRF token a browser would echo back (from a page view)."""
    if "shop_csrf" not in client.cookies:
        client.get("/login")
    return str(client.cookies["shop_csrf"])


def log_in(
    client: TestClient, email: str = "ada@example.com", password: str = "secret-pass"
) -> httpx.Response:
    form = {"email": email, "password": password, "csrf_token": csrf(client), "next": "/"}
    return client.post("/login", data=form, follow_redirects=False)
