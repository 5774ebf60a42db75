"""Shoppers for Locust: weighted journeys through the frontend's JSON API (/api/).

    locust -f loadtest/locustfile.py --headless -u 20 -r 5 -t 30s --host http://127.0.0.1:8080

Every run registers its own users (unique emails), so it needs no fixtures and can run again and again,
against `make dev` or a cluster (`--host http://localhost`). Request names group URLs with ids, so the
statistics show one line per endpoint. At the end a summary with requests/s, p50/p95/p99 and failures
is printed (and `--csv` files are written by Locust itself if asked for).
"""

from __future__ import annotations

import atexit
import itertools
import random
import uuid
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

RUN_ID = uuid.uuid4().hex[:8]
_numbers = itertools.count(1)
PASSWORD = "load-test-password"
TEST_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}  # always succeeds
ADDRESS = {
    "name": "Load Tester",
    "street": "Teststraat 1",
    "city": "Utrecht",
    "postal_code": "3511 AA",
    "country": "NL",
}
CATEGORIES = ("coffee", "kitchen", "outdoor", "electronics", "books", "home")


class _Catalog:
    """Browsing shared by both kinds of shopper."""

    client: Any
    products: list[dict[str, Any]]

    def browse(self) -> None:
        params: dict[str, Any] = {"page": 1, "page_size": 20}
        if random.random() < 0.5:
            params["category"] = random.choice(CATEGORIES)
        with self.client.get(
            "/api/products", params=params, name="/api/products?[filters]", catch_response=True
        ) as response:
            if response.status_code == 200:
                items = response.json().get("items", [])
                if items:
                    self.products = items
                response.success()

    def view_product(self) -> dict[str, Any] | None:
        if not self.products:
            self.browse()
        if not self.products:
            return None
        product = random.choice(self.products)
        self.client.get(f"/api/products/{product['id']}", name="/api/products/[id]")
        return product


class WindowShopper(_Catalog, HttpUser):
    """Anonymous visitors: look around, never buy."""

    weight = 2
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.products = []

    @task(3)
    def browse_catalog(self) -> None:
        self.browse()

    @task(2)
    def look_at_a_product(self) -> None:
        self.view_product()


class Buyer(_Catalog, HttpUser):
    """Registered shoppers: browse, log in, fill the cart, check out, look at their orders."""

    weight = 3
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.products = []
        self.orders: list[str] = []
        self.in_cart = 0
        self.email = f"load-{RUN_ID}-{next(_numbers)}@example.com"
        self.registered = False
        self.register_attempts = 0
        self.signed_in()

    def signed_in(self) -> bool:
        """Register (until the shop has said yes) and log in when there is no token yet; False while refused.

        A shopper whose sign-in failed (the shop down, a chaos run's fault) does not call what needs a login:
        those calls would all fail 401 and hide the real failure, the login's, among them. It tries again
        before its next task that needs a login.
        """
        if "Authorization" in self.client.headers:
            return True
        if not self.registered:
            body = {"email": self.email, "password": PASSWORD, "name": "Load Tester"}
            with self.client.post("/api/register", json=body, name="/api/register", catch_response=True) as r:
                self.registered = r.status_code in (200, 201)
                if r.status_code == 409 and self.register_attempts:  # an earlier attempt's answer was lost
                    self.registered = True
                    r.success()
            self.register_attempts += 1
        if self.registered:
            self.log_in()
        return "Authorization" in self.client.headers

    @task(1)
    def log_in(self) -> None:
        body = {"email": self.email, "password": PASSWORD}
        with self.client.post("/api/login", json=body, name="/api/login", catch_response=True) as response:
            if response.status_code == 200:
                self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
                self.client.cookies.clear()  # the API login also sets cookies; the Bearer token is enough

    @task(6)
    def browse_catalog(self) -> None:
        self.browse()

    @task(4)
    def look_at_a_product(self) -> None:
        self.view_product()

    @task(3)
    def add_to_cart(self) -> None:
        if not self.signed_in():
            return
        product = self.view_product()
        if product is None or product.get("stock", 1) < 5:
            return
        body = {"product_id": product["id"], "quantity": 1}
        with self.client.post("/api/cart/items", json=body, name="/api/cart/items", catch_response=True) as r:
            if r.status_code in (200, 201):
                self.in_cart += 1

    @task(2)
    def check_out(self) -> None:
        if not self.signed_in():
            return
        if self.in_cart == 0:
            self.add_to_cart()
            if self.in_cart == 0:
                return
        self.client.get("/api/cart", name="/api/cart")
        # One key per purchase; a retry after a timeout or 5xx reuses it, so it can never buy twice.
        key = uuid.uuid4().hex
        for _attempt in range(2):
            with self.client.post(
                "/api/checkout",
                json={"shipping_address": ADDRESS, "card": TEST_CARD},
                headers={"Idempotency-Key": key},
                name="/api/checkout",
                catch_response=True,
            ) as response:
                if response.status_code == 201:
                    self.orders.append(response.json()["id"])
                    self.in_cart = 0
                    break
                if response.status_code < 500:
                    break
        if self.orders:
            self.client.get(f"/api/orders/{self.orders[-1]}", name="/api/orders/[id]")

    @task(2)
    def view_orders(self) -> None:
        if not self.signed_in():
            return
        self.client.get("/api/orders", name="/api/orders")
        if self.orders:
            self.client.get(f"/api/orders/{random.choice(self.orders)}", name="/api/orders/[id]")

    @task(1)
    def read_notifications(self) -> None:
        if not self.signed_in():
            return
        self.client.get("/api/notifications", name="/api/notifications")


def summary_lines(environment: Environment) -> list[str]:
    """The headline figures of a run: requests/s, latency percentiles and failures."""
    total = environment.stats.total
    lines = [
        "",
        "=== load test summary ===",
        f"requests      {total.num_requests}",
        f"failures      {total.num_failures} ({total.fail_ratio:.1%})",
        f"requests/s    {total.total_rps:.1f}",
    ]
    # Locust keeps response times in rounded buckets (10 ms steps above 100 ms), so a percentile can come out
    # above the slowest request: never show more than the maximum.
    slowest = total.max_response_time or 0
    p50, p95, p99 = (min(total.get_response_time_percentile(p) or 0, slowest) for p in (0.5, 0.95, 0.99))
    lines.append(f"latency ms    p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99:.0f}  max {slowest:.0f}")
    for error in environment.stats.errors.values():
        lines.append(f"failure       {error.occurrences}x {error.method} {error.name}: {error.error}")
    return lines


@events.quitting.add_listener
def _print_summary(environment: Environment, **_: Any) -> None:
    # Locust prints its own tables after this event; the summary goes last, where it is easy to find.
    atexit.register(lambda: print("\n".join(summary_lines(environment)), flush=True))
