"""Service identity between real processes: order's own token (client credentials at auth, with the secret
`make dev` generates) is what payment's refund and lookup-by-order answer to; a shopper's token gets 403."""

from __future__ import annotations

import uuid

import httpx
import pytest

from scripts.dev import Stack

pytestmark = pytest.mark.timeout(120)
ADDRESS = {
    "name": "Ida",
    "street": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NL",
}
CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}


def shopper_with_a_paid_order(stack: Stack) -> tuple[dict[str, str], dict[str, object]]:
    with httpx.Client(base_url=stack.url("frontend"), timeout=15) as shop:
        email = f"ida-{uuid.uuid4().hex[:8]}@example.com"
        shop.post("/api/register", json={"email": email, "password": "pa55word!x", "name": "Ida"})
        token = shop.post("/api/login", json={"email": email, "password": "pa55word!x"}).json()[
            "access_token"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        product = next(p for p in shop.get("/api/products").json()["items"] if p["stock"] >= 1)
        shop.post("/api/cart/items", json={"product_id": product["id"], "quantity": 1}, headers=auth)
        checkout = shop.post(
            "/api/checkout",
            json={"shipping_address": ADDRESS, "card": CARD},
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert checkout.status_code == 201, checkout.text
        return auth, checkout.json()


def test_payment_refunds_and_lookups_answer_to_order_alone(running_stack: Stack) -> None:
    shopper, order = shopper_with_a_paid_order(running_stack)
    payment = running_stack.url("payment")
    refund = f"{payment}/payments/{order['payment_id']}/refund"
    lookup = f"{payment}/payments/by-order/{order['id']}"

    assert httpx.post(refund, headers=shopper).status_code == 403
    assert httpx.get(lookup, headers=shopper).status_code == 403

    # Order's identity, exactly as order gets it: the client credentials grant at auth.
    secret = running_stack.client_secrets["order"]
    issued = httpx.post(
        f"{running_stack.url('auth')}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("order", secret),
    )
    assert issued.status_code == 200, issued.text
    as_order = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    found = httpx.get(lookup, headers=as_order)
    assert found.status_code == 200 and found.json()["status"] == "succeeded"
    refunded = httpx.post(refund, headers=as_order)
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert (
        httpx.post(
            f"{running_stack.url('auth')}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("order", secret[::-1]),
        ).status_code
        == 401
    )


def test_an_admin_refund_goes_through_order(running_stack: Stack) -> None:
    """Order refunds with its own token (its secret from the stack's environment) and records it."""
    shopper, order = shopper_with_a_paid_order(running_stack)
    with httpx.Client(base_url=running_stack.url("frontend"), timeout=15) as shop:
        shop.post(
            "/api/register", json={"email": "admin@example.com", "password": "pa55word!x", "name": "Boss"}
        )
        login = shop.post("/api/login", json={"email": "admin@example.com", "password": "pa55word!x"})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    url = f"{running_stack.url('order')}/orders/{order['id']}/refund"
    assert httpx.post(url, json={"reason": "test"}, headers=shopper).status_code == 403
    refunded = httpx.post(url, json={"reason": "test"}, headers=admin, timeout=15)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "refunded"
    seen = httpx.get(f"{running_stack.url('frontend')}/api/orders/{order['id']}", headers=shopper).json()
    assert seen["status"] == "refunded"
