"""order running in-process with the real product, payment, shipping and notification apps behind it
(product's gRPC Inventory on a free loopback port), and a transport that can fail or slow any call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from scripts.dev import free_port
from services.auth.app import build_app as auth_app
from services.auth.settings import Settings as AuthSettings
from services.kit.http import ServiceClient
from services.kit.testing import TokenFactory
from services.notification.app import build_app as notification_app
from services.notification.settings import Settings as NotificationSettings
from services.order.app import build_app as order_app
from services.order.settings import Settings as OrderSettings
from services.payment.app import build_app as payment_app
from services.payment.settings import Settings as PaymentSettings
from services.product.app import build_app as product_app
from services.product.settings import Settings as ProductSettings
from services.shipping.app import build_app as shipping_app
from services.shipping.settings import Settings as ShippingSettings

ORDER_SECRET = "order-client-secret-for-the-tests-0123456789"
ADDRESS = {
    "name": "Ada",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "NL",
}
GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
DECLINED_CARD = {**GOOD_CARD, "number": "4000 0000 0000 0002"}
CHECKOUT = {"shipping_address": ADDRESS, "card": GOOD_CARD}


class Hosts(httpx.AsyncBaseTransport):
    """Routes the order service's outgoing HTTP calls to the in-process app named by the host.
    `fake` answers chosen (host, method, path) calls itself, to simulate an outage or an odd answer."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.routes = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
        self.fake: dict[tuple[str, str, str], httpx.Response] = {}
        self.flaky: dict[str, int] = {}  # path suffix -> how many more calls answer 503
        self.read_timeout: dict[str, float] = {}  # path -> seconds before the caller gives up
        self.late: list[asyncio.Task[httpx.Response]] = []  # calls that go on after the caller gave up
        self.calls: list[httpx.Request] = []
        self.fake_prefix: tuple[str, str, str] | None = None  # (host, method, path prefix) answered 503
        # (method, path) -> answers that replace the callee's own, one per call, after it handled the call:
        # a status (the answer lost on the way back, as a proxy reports it) or "timeout" (the caller gave up)
        self.lost: dict[tuple[str, str], list[int | str]] = {}
        self.blocked: dict[tuple[str, str], list[int | str]] = {}  # the same, before the callee sees the call

    def down(self, host: str, method: str, path: str) -> None:
        body = {"error": {"code": "unavailable", "message": "down for the test"}}
        self.fake[(host, method, path)] = httpx.Response(503, json=body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        suffix = next((end for end in self.flaky if request.url.path.endswith(end)), None)
        if suffix is not None and self.flaky[suffix] > 0:
            self.flaky[suffix] -= 1
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "flaky"}})
        prefix = self.fake_prefix
        if (
            prefix
            and (request.url.host, request.method) == prefix[:2]
            and request.url.path.startswith(prefix[2])
        ):
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "down (test)"}})
        fake = self.fake.get((request.url.host, request.method, request.url.path))
        if fake is not None:
            return httpx.Response(fake.status_code, content=fake.content, headers=fake.headers)
        blocked = self.blocked.get((request.method, request.url.path))
        if blocked:
            return lost_answer(blocked.pop(0), None, request)
        call = self.routes[request.url.host].handle_async_request(request)
        lost = self.lost.get((request.method, request.url.path))
        if lost:
            return lost_answer(lost.pop(0), await call, request)
        if request.url.path not in self.read_timeout:
            return await call
        # Like a real read timeout: the caller gives up, the callee goes on with the request.
        task = asyncio.ensure_future(call)
        self.late.append(task)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.read_timeout[request.url.path])
        except TimeoutError:
            raise httpx.ReadTimeout("timed out (test)", request=request) from None


def lost_answer(
    replacement: int | str, handled: httpx.Response | None, request: httpx.Request
) -> httpx.Response:
    """What the caller gets instead of `handled` (None: the callee never saw the call): a read timeout,
    the callee's own 500 body, or a proxy's plain-text 5xx (as Envoy or a load balancer answers: no JSON)."""
    if replacement == "timeout":
        raise httpx.ReadTimeout("timed out (test)", request=request)
    if replacement == 500:
        body = {"error": {"code": "internal_error", "message": "internal error"}}
        return httpx.Response(500, json=body)
    return httpx.Response(int(replacement), text=f"upstream answered {replacement} (test)")


@dataclass
class Shop:
    order: FastAPI
    auth: FastAPI
    payment: FastAPI
    product: FastAPI
    shipping: FastAPI
    notification: FastAPI
    client: httpx.AsyncClient
    payment_client: httpx.AsyncClient
    hosts: Hosts
    tokens: TokenFactory

    def user(self, sub: str = "ada") -> dict[str, str]:
        return self.tokens.headers(sub=sub, email=f"{sub}@example.com")

    async def stock(self, product_id: str) -> int:
        levels = await self.order.state.inventory.get_stock([product_id])
        return int(levels[product_id])

    async def fill_cart(self, headers: dict[str, str], *items: tuple[str, int]) -> None:
        for product_id, quantity in items:
            added = await self.client.post(
                "/cart/items", json={"product_id": product_id, "quantity": quantity}, headers=headers
            )
            assert added.status_code == 200, added.text

    async def checkout(self, headers: dict[str, str], key: str | None, body: Any = None) -> httpx.Response:
        extra = {"Idempotency-Key": key} if key is not None else {}
        return await self.client.post("/orders", json=body or CHECKOUT, headers={**headers, **extra})

    async def docs(self, app: FastAPI, collection: str, query: dict[str, Any] | None = None) -> list[Any]:
        result: list[Any] = await app.state.db[collection].find(query or {}).to_list(length=None)
        return result


@asynccontextmanager
async def running_shop(
    payment: PaymentSettings | None = None,
    ship_after_seconds: float = 3600,
    deliver_after_seconds: float | None = None,
    track_poll_seconds: float = 0.05,
) -> AsyncIterator[Shop]:
    grpc_port = free_port()
    apps = {
        "auth": auth_app(AuthSettings(oauth_clients=f"order={ORDER_SECRET}")),  # type: ignore[arg-type]
        "product": product_app(ProductSettings(grpc_port=grpc_port)),
        "payment": payment_app(payment or PaymentSettings()),
        "shipping": shipping_app(
            ShippingSettings(
                ship_after_seconds=ship_after_seconds,
                deliver_after_seconds=deliver_after_seconds or ship_after_seconds * 2,
            )
        ),
        "notification": notification_app(NotificationSettings()),
    }
    settings = OrderSettings(
        auth_url="http://auth",
        oauth_client_secret=ORDER_SECRET,  # type: ignore[arg-type]
        track_poll_seconds=track_poll_seconds,
        product_url="http://product",
        payment_url="http://payment",
        shipping_url="http://shipping",
        notification_url="http://notification",
        product_grpc_target=f"127.0.0.1:{grpc_port}",
    )
    order = order_app(settings)
    hosts = Hosts(apps)
    order.state.http = ServiceClient(settings, transport=hosts)
    tokens = TokenFactory()
    for app in (*apps.values(), order):
        if hasattr(app.state, "verifier"):  # the services that verify tokens (product does not)
            tokens.trust_in(app)  # shoppers' tokens
            app.state.verifier.trust(apps["auth"].state.signing_key.jwks())  # order's own token
    async with AsyncExitStack() as stack:
        for app in (*apps.values(), order):
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=order), base_url="http://order", timeout=60)
        )
        payment_client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["payment"]), base_url="http://payment")
        )
        yield Shop(
            order=order, client=client, payment_client=payment_client, hosts=hosts, tokens=tokens, **apps
        )
