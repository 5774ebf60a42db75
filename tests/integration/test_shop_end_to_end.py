"""All eight services as real processes: a shopper's purchase through the frontend's JSON API."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def test_register_browse_buy_and_follow_the_order(shop_stack: str) -> None:
    with httpx.Client(base_url=shop_stack, timeout=15) as shop:
        email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
        assert (
            shop.post(
                "/api/register", json={"email": email, "password": "pa55word!x", "name": "Eve"}
            ).status_code
            == 201
        )
        login = shop.post("/api/login", json={"email": email, "password": "pa55word!x"})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

        products = shop.get("/api/products").json()["items"]
        product = next(p for p in products if p["stock"] >= 2)
        detail = shop.get(f"/api/products/{product['id']}")
        assert detail.status_code == 200
        added = shop.post("/api/cart/items", json={"product_id": product["id"], "quantity": 2}, headers=auth)
        assert added.status_code in (200, 201), added.text
        cart = shop.get("/api/cart", headers=auth).json()
        assert cart["total_cents"] == 2 * product["price_cents"]

        key = uuid.uuid4().hex
        checkout = shop.post(
            "/api/checkout",
            headers={**auth, "Idempotency-Key": key},
            json={
                "shipping_address": {
                    "name": "Eve",
                    "street": "Keizersgracht 1",
                    "city": "Amsterdam",
                    "postal_code": "1015 CJ",
                    "country": "NL",
                },
                "card": {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
            },
        )
        assert checkout.status_code == 201, checkout.text
        order = checkout.json()
        assert order["status"] == "paid"
        assert order["tracking_number"]
        replay = shop.post(  # the same purchase again (a lost answer, a double click): the same order
            "/api/checkout",
            headers={**auth, "Idempotency-Key": key, "Content-Type": "application/json"},
            content=checkout.request.content,
        )
        assert replay.status_code == 201 and replay.json()["id"] == order["id"]
        assert replay.headers["idempotent-replayed"] == "true"

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            order = shop.get(f"/api/orders/{order['id']}", headers=auth).json()
            if order["status"] == "shipped":
                break
            time.sleep(0.5)
        statuses = [step["status"] for step in order["status_history"]]
        assert "paid" in statuses
        assert order["status"] == "shipped", statuses
        assert statuses.index("paid") < statuses.index("shipped")

        assert order["id"] in [o["id"] for o in shop.get("/api/orders", headers=auth).json()["items"]]
        notifications = shop.get("/api/notifications", headers=auth).json()["items"]
        assert any(n.get("order_id") == order["id"] for n in notifications)


def test_locust_journeys_run_against_the_stack_without_failures(shop_stack: str) -> None:
    """A short `make load` (the real locustfile, headless): every journey works against real services."""
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-u", "6", "-r", "6",
         "-t", "8s", "--host", shop_stack, "--only-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "failures      0 (0.0%)" in output, output[-3000:]
    for line in ("requests/s", "latency ms    p50", "/api/register", "/api/products"):
        assert line in output, output[-3000:]
