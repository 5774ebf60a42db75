"""Shoppers for the benchmark: accounts, the add-to-cart requests, and the checkout journey.

The journey is what a buyer does once the product is chosen, through the frontend's JSON API: add one unit
to the cart (`POST /api/cart/items`), then check out (`POST /api/checkout` with an `Idempotency-Key`), which
makes order reserve stock over gRPC, charge payment, create a shipment and notify. N shoppers run it, each
one journey after the other. With a think time (`make load`'s shoppers wait 1-3 s between steps: the
locustfile's `wait_time = between(1, 3)`) a shopper pauses that long after each answer, as a person does:
the latency is then what one shopper waits for the shop. Without it the loop is closed and saturates the
shop: the rate is its capacity, and the latency only N divided by that rate (Little's law). It runs in
this process on asyncio (aiohttp: far less client CPU per request than the services spend), since wrk can't
keep one shopper's cart and checkout on one connection.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.result import Result, from_latencies
from bench.wrk import Request

PASSWORD = "bench-password-1"
ADDRESS = {
    "name": "Bench Shopper",
    "street": "Benchstraat 1",
    "city": "Utrecht",
    "postal_code": "3511 AA",
    "country": "NL",
}
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
TIMEOUT = aiohttp.ClientTimeout(total=30)
ATTEMPTS = 4  # registrations and logins on a loaded machine


@dataclass
class Catalog:
    """Stock the benchmark may still buy, per product (the seed catalog is finite: 1,309 units)."""

    stock: dict[str, int]
    _order: Iterator[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._order = self._cycle()

    def _cycle(self) -> Iterator[str]:
        while any(units > 0 for units in self.stock.values()):
            for product_id, units in self.stock.items():
                if units > 0:
                    yield product_id

    def take(self) -> str | None:
        """A product with a unit left (that unit is now spoken for), or None when everything is sold."""
        product_id = next(self._order, None)
        if product_id is not None:
            self.stock[product_id] -= 1
        return product_id

    @property
    def product_ids(self) -> list[str]:
        return sorted(self.stock)

    def plentiful(self, units: int) -> list[str]:
        """The products with at least `units` left: add to cart cycles through these, so a line never asks
        for more than is in stock (order answers that 409 insufficient_stock: a refusal, not a failure; the
        journeys, which buy evenly across the catalog, leave the smallest stocks nearly empty)."""
        return sorted(product_id for product_id, left in self.stock.items() if left >= units)


async def catalog(frontend: str) -> Catalog:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.get(f"{frontend}/api/products", params={"page_size": "100"}) as answer,
    ):
        answer.raise_for_status()
        items = (await answer.json())["items"]
    return Catalog({item["id"]: int(item["stock"]) for item in items})


async def accounts(frontend: str, prefix: str, count: int) -> list[str]:
    """Register and log in `count` new shoppers; their access tokens. Two at a time, as auth hashes two
    passwords at a time: more only queue behind the hashing until the frontend's 5 s timeout (504). A 503/504
    is retried; a 409 after one means the first attempt did register."""
    hashing = asyncio.Semaphore(2)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:

        async def post(path: str, body: dict[str, str], accepted: tuple[int, ...]) -> tuple[int, str]:
            for attempt in range(1, ATTEMPTS + 1):
                async with hashing, http.post(f"{frontend}{path}", json=body) as answer:
                    text = await answer.text()
                    if answer.status in accepted or (answer.status == 409 and attempt > 1):
                        return answer.status, text
                    if answer.status not in (503, 504) or attempt == ATTEMPTS:
                        raise RuntimeError(f"{path} {body['email']}: {answer.status} {text}")
                await asyncio.sleep(attempt)
            raise AssertionError("unreachable")

        async def one(index: int) -> str:
            email = f"{prefix}-{index}@example.com"
            await post(
                "/api/register", {"email": email, "password": PASSWORD, "name": f"Bench {index}"}, (201,)
            )
            _, text = await post("/api/login", {"email": email, "password": PASSWORD}, (200,))
            return str(json.loads(text)["access_token"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def add_to_cart_requests(tokens: list[str], product_ids: list[str]) -> list[Request]:
    """Every (shopper, product) pair once, one unit each: wrk cycles through them, so no cart line grows
    past a few units in a run (order refuses more than 99, or more than in stock)."""
    return [
        Request(
            "POST",
            "/api/cart/items",
            (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
            json.dumps({"product_id": product_id, "quantity": 1}),
        )
        for product_id in product_ids
        for token in tokens
    ]


async def empty_carts(order: str, tokens: list[str]) -> None:
    """Remove every line from these shoppers' carts (order's API, with each shopper's token). A loaded
    machine may answer 503/504 (order checks the token with auth's keys): retried a few times."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:

        async def call(method: str, url: str, headers: dict[str, str]) -> Any:
            for attempt in range(1, ATTEMPTS + 1):
                async with http.request(method, url, headers=headers) as answer:
                    if answer.status < 500 or attempt == ATTEMPTS:
                        answer.raise_for_status()
                        return await answer.json() if answer.content_length != 0 else None
                await asyncio.sleep(attempt)

        async def one(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            cart = await call("GET", f"{order}/cart", headers)
            for item in cart["items"]:
                await call("DELETE", f"{order}/cart/items/{item['product_id']}", headers)

        await asyncio.gather(*(one(token) for token in tokens))


@dataclass
class JourneyOutcome:
    result: Result  # per journey: its rate, and the latency of its two answers together
    sold_out: bool
    failures: dict[str, int]
    steps: dict[str, Result]  # per answer: add to cart, check out


async def journeys(
    frontend: str, tokens: list[str], stock: Catalog, seconds: float, think: tuple[float, float] = (0.0, 0.0)
) -> JourneyOutcome:
    """Every shopper buys one unit at a time until `seconds` have passed (or the stock is gone), pausing a
    random `think` time (seconds, lowest-highest) before each step. A journey's latency is the time its two
    answers took (add to cart + check out), the pauses left out; `steps` keeps each answer's time apart."""
    latencies: list[float] = []
    steps: dict[str, list[float]] = {"add to cart": [], "check out": []}
    failures: dict[str, int] = {}
    sold_out = False
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as http:

        async def pause(deadline: float) -> bool:
            """Think before choosing the next product (no longer than the run lasts), then say whether
            there is time for it."""
            if think[1] > 0:
                await asyncio.sleep(min(random.uniform(*think), max(0.0, deadline - time.monotonic())))
            return time.monotonic() < deadline

        async def step(
            name: str, url: str, body: dict[str, Any], headers: dict[str, str], ok: int
        ) -> float | None:
            """One answer's time in ms, None when it was not `ok`."""
            started = time.perf_counter()
            async with http.post(url, json=body, headers=headers) as answer:
                await answer.read()
                if answer.status != ok:
                    _count(failures, f"{name} {answer.status}")
                    return None
            steps[name].append((time.perf_counter() - started) * 1000)
            return steps[name][-1]

        async def shopper(token: str, deadline: float) -> None:
            nonlocal sold_out
            headers = {"Authorization": f"Bearer {token}"}
            while await pause(deadline):
                product_id = stock.take()
                if product_id is None:
                    sold_out = True
                    return
                cart = {"product_id": product_id, "quantity": 1}
                added = await step("add to cart", f"{frontend}/api/cart/items", cart, headers, 200)
                if added is None:
                    continue
                # Think as long as a person would, then check out, even past the deadline: no cart is left
                # filled, and the shoppers thinking when the run ends do not all pay at its last instant.
                if think[1] > 0:
                    await asyncio.sleep(random.uniform(*think))
                pay = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                order = {"shipping_address": ADDRESS, "card": CARD}
                paid = await step("check out", f"{frontend}/api/checkout", order, pay, 201)
                if paid is not None:
                    latencies.append(added + paid)

        began = time.monotonic()
        deadline = began + seconds
        await asyncio.gather(*(shopper(token, deadline) for token in tokens))
        elapsed = time.monotonic() - began
    result = from_latencies(latencies, elapsed, sum(failures.values()))
    return JourneyOutcome(
        result, sold_out, failures, {k: from_latencies(v, elapsed, 0) for k, v in steps.items()}
    )


def _count(failures: dict[str, int], what: str) -> None:
    failures[what] = failures.get(what, 0) + 1
