"""All eight services as real processes: a shopper's purchase through the frontend's JSON API."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.timeout(180)


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

        checkout = shop.post(
            "/api/checkout",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
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
