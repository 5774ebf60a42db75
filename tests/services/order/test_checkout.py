"""order service, checkout: the real order, payment, shipping, notification and product apps in one
process (HTTP between them over httpx.ASGITransport routed by host, product's gRPC Inventory on a
loopback port). Idempotency under concurrency, failures after reservation, retries, refresh."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.contracts import CheckoutIn
from services.kit import clock
from services.kit.http import ServiceClient
from services.order import checkout, store
from services.payment.settings import Settings as PaymentSettings
from tests.services.helpers import PLANTED_ADDRESS_VALUES, PLANTED_IDS, assert_refused_field, planted_address
from tests.services.order.in_process import (
    ADDRESS,
    CHECKOUT,
    DECLINED_CARD,
    GOOD_CARD,
    Hosts,
    Shop,
    running_shop,
)

pytestmark = pytest.mark.timeout(90)


async def test_checkout_pays_ships_notifies_and_empties_the_cart(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp"), await shop.stock("chef-knife")
    await shop.fill_cart(ada, ("headlamp", 2), ("chef-knife", 1))

    response = await shop.checkout(ada, "key-1")
    assert response.status_code == 201, response.text
    assert response.headers["x-served-by"] == "order/v1"
    order = response.json()
    assert order["status"] == "paid"
    assert [h["status"] for h in order["status_history"]] == [
        "pending", "reserved", "charged", "shipment_created", "confirmation_sent", "paid",
    ]  # fmt: skip
    product = (await shop.client.get("/cart", headers=ada)).json()  # cart emptied after success
    assert product["items"] == []
    assert order["payment_id"] and order["shipment_id"] and order["tracking_number"].startswith("SP")
    assert order["total_cents"] == order["subtotal_cents"] + order["shipping_cents"] > order["subtotal_cents"]
    assert (await shop.stock("headlamp"), await shop.stock("chef-knife")) == (before[0] - 2, before[1] - 1)

    payments = await shop.docs(shop.payment, "payments")
    assert [(p["order_id"], p["status"], p["amount_cents"]) for p in payments] == [
        (order["id"], "succeeded", order["total_cents"])
    ]
    notes = await shop.docs(shop.notification, "outbox")
    assert [(n["user_id"], n["kind"], n["order_id"]) for n in notes] == [
        ("ada", "order_confirmation", order["id"])
    ]
    # Every downstream call carried the caller's token (zero trust: they verify it) and request id.
    assert {c.headers.get("authorization") for c in shop.hosts.calls} == {ada["Authorization"]}


async def test_the_order_charges_todays_prices_and_ships_the_carts_weight(shop: Shop) -> None:
    """What the shopper pays and receives: each line at the catalog's price at checkout (not the price when
    it went into the cart), shipping quoted for the cart's weight from the catalog (2 x 150 g headlamp +
    350 g knife = 650 g, 1 started kilogram, domestic 4.95 + 1.00), the shipment made for that weight and
    address, the confirmation saying what was bought and the total."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 2), ("chef-knife", 1))
    products = shop.product.state.db["products"]
    await products.update_one({"_id": "headlamp"}, {"$set": {"price_cents": 3100}})  # a price rise since
    knife = await products.find_one({"_id": "chef-knife"})

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["items"] == [
        {
            "product_id": "headlamp",
            "name": "Rechargeable Headlamp",
            "price_cents": 3100,
            "quantity": 2,
            "line_total_cents": 6200,
        },
        {
            "product_id": "chef-knife",
            "name": knife["name"],
            "price_cents": knife["price_cents"],
            "quantity": 1,
            "line_total_cents": knife["price_cents"],
        },
    ]
    subtotal = 6200 + knife["price_cents"]
    assert (order["subtotal_cents"], order["shipping_cents"], order["total_cents"]) == (
        subtotal,
        495 + 100,
        subtotal + 595,
    )
    address = {**ADDRESS, "label": None}
    assert (order["currency"], order["shipping_address"]) == ("EUR", address)
    [shipment] = await shop.docs(shop.shipping, "shipments")
    assert (shipment["order_id"], shipment["weight_grams"]) == (order["id"], 2 * 150 + 350)
    assert {**shipment["address"], "label": shipment["address"].get("label")} == address
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["amount_cents"], payment["currency"]) == (subtotal + 595, "EUR")
    [note] = await shop.docs(shop.notification, "outbox")
    total = f"{(subtotal + 595) / 100:.2f}"
    assert (note["subject"], note["body"]) == (
        "Your order is confirmed",
        f"Thank you! Order {order['id'][:8]}: 2 x Rechargeable Headlamp, 1 x {knife['name']}. "
        f"Total {total} EUR.",
    )


async def test_a_product_answer_without_a_weight_or_a_currency_ships_at_the_default_and_charges_euros(
    shop: Shop,
) -> None:
    """Product answers as an older product version (or a product stored before weights) may: the knife
    without `weight_grams` counts order's default 500 g a unit, the headlamp's own weight (here 1,200 g)
    counts as named (2 x 1,200 g + 500 g = 2,900 g, 3 started kilograms), and an answer without a currency
    means euros, so the cart is not mixed."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 2), ("chef-knife", 1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.product), base_url="http://p") as p:
        headlamp = (await p.get("/products/headlamp")).json()
        knife = (await p.get("/products/chef-knife")).json()
    del headlamp["currency"], knife["weight_grams"]
    weighed = httpx.Response(200, json={**headlamp, "weight_grams": 1200})
    shop.hosts.fake[("product", "GET", "/products/headlamp")] = weighed
    shop.hosts.fake[("product", "GET", "/products/chef-knife")] = httpx.Response(200, json=knife)

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["currency"], order["shipping_cents"]) == ("EUR", 495 + 3 * 100)
    assert order["total_cents"] == order["subtotal_cents"] + 795
    [shipment] = await shop.docs(shop.shipping, "shipments")
    assert shipment["weight_grams"] == 2900
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["amount_cents"], payment["currency"]) == (order["total_cents"], "EUR")


async def test_a_cart_mixing_currencies_is_refused_before_anything_is_reserved(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp"), await shop.stock("chef-knife")
    await shop.fill_cart(ada, ("headlamp", 1), ("chef-knife", 1))
    products = shop.product.state.db["products"]
    await products.update_one({"_id": "chef-knife"}, {"$set": {"currency": "USD"}})

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 409, response.text
    assert response.json()["error"] == {"code": "mixed_currency", "message": "the cart mixes currencies"}
    assert await shop.docs(shop.order, "orders") == []
    assert await shop.docs(shop.payment, "payments") == []
    assert (await shop.stock("headlamp"), await shop.stock("chef-knife")) == before
    assert len((await shop.client.get("/cart", headers=ada)).json()["items"]) == 2


async def test_an_order_inserted_and_retired_by_other_requests_meanwhile_is_a_409_to_try_again(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted interleaving: another request with the same key inserted its order first (this insert loses on
    the unique key), and a third retired that attempt before this one could read it. Nothing is reserved or
    charged; the shopper is told to try again."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))

    async def lost_the_insert(db: Any, doc: dict[str, Any]) -> bool:
        return False

    monkeypatch.setattr(store, "insert_order", lost_the_insert)
    response = await shop.checkout(ada, "k1")

    assert response.status_code == 409, response.text
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "the order changed meanwhile; try again",
    }
    assert await shop.docs(shop.payment, "payments") == []
    assert await shop.stock("headlamp") == before


async def test_same_checkout_20_times_concurrently_is_one_order_one_charge(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 3))

    answers = await asyncio.gather(*(shop.checkout(ada, "same-key") for _ in range(20)))

    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 19
    assert len(await shop.docs(shop.order, "orders")) == 1
    assert len(await shop.docs(shop.payment, "payments")) == 1
    assert len(await shop.docs(shop.shipping, "shipments")) == 1
    assert await shop.stock("headlamp") == before - 3
    charges = [c for c in shop.hosts.calls if c.url.path == "/payments"]
    assert len(charges) == 1

    again = await shop.checkout(ada, "same-key")  # later, with the cart now empty: still the same order
    assert again.status_code == 201 and again.json()["id"] == answers[0].json()["id"]


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "new-key-per-attempt"])
async def test_payment_failing_half_the_time_with_a_retrying_client(same_key: bool) -> None:
    async with running_shop(PaymentSettings(failure_rate=0.5)) as shop:
        shop.payment.state.fault_random = random.Random(1)  # first draws: fail, fail, ... then succeed
        ada = shop.user()
        before = await shop.stock("chef-knife")
        await shop.fill_cart(ada, ("chef-knife", 2))

        key = uuid.uuid4().hex
        failed_ids, paid = [], None
        for _ in range(20):  # a client retrying until success
            response = await shop.checkout(ada, key if same_key else uuid.uuid4().hex)
            if response.status_code == 201:
                paid = response.json()
                break
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "simulated_failure"
            failed_ids.append(error["details"]["order_id"])
            assert await shop.stock("chef-knife") == before  # no leaked reservation after each failure
        assert paid is not None and failed_ids, "expected failures before a success"
        assert len(set(failed_ids)) == len(failed_ids) and paid["id"] not in failed_ids

        payments = await shop.docs(shop.payment, "payments")
        assert [(p["order_id"], p["status"]) for p in payments] == [(paid["id"], "succeeded")]
        assert await shop.stock("chef-knife") == before - 2
        assert (await shop.client.get("/cart", headers=ada)).json()["items"] == []
        for order_id in failed_ids:
            failed = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
            assert failed["status"] == "failed" and "simulated_failure" in failed["failure_reason"]
            steps = [h["status"] for h in failed["status_history"]]
            assert (
                steps[-3:] == ["released", "failed", "retried"]
                if same_key
                else steps[-2:]
                == [
                    "released",
                    "failed",
                ]
            )
        if same_key:  # the key now names the paid order, for good
            again = await shop.checkout(ada, key)
            assert again.status_code == 201 and again.json()["id"] == paid["id"]
            assert again.headers["idempotent-replayed"] == "true"
            assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_retries_of_a_failed_checkout_racing_each_other_make_one_new_attempt(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    http = shop.order.state.http
    shop.order.state.http = ServiceClient(
        shop.order.state.settings, transport=Refusing(shop.hosts, "payment")
    )
    failed = await shop.checkout(ada, "k1")  # payment unreachable: nothing charged, stock released
    assert failed.status_code == 503
    first = failed.json()["error"]["details"]["order_id"]
    assert await shop.stock("headlamp") == before

    shop.order.state.http = http  # payment is back
    answers = await asyncio.gather(*(shop.checkout(ada, "k1") for _ in range(10)))
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers} | {first}) == 2
    assert len(await shop.docs(shop.order, "orders")) == 2
    assert len(await shop.docs(shop.payment, "payments")) == 1
    assert await shop.stock("headlamp") == before - 1


async def test_a_declined_card_is_not_retried_under_the_same_key(shop: Shop) -> None:
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    body = {"shipping_address": ADDRESS, "card": DECLINED_CARD}
    first = await shop.checkout(ada, "k1", body)
    again = await shop.checkout(ada, "k1", body)
    assert first.status_code == again.status_code == 402
    assert again.json()["error"]["details"]["order_id"] == first.json()["error"]["details"]["order_id"]
    assert len(await shop.docs(shop.order, "orders")) == 1


async def test_a_lost_payment_answer_keeps_the_order_open_until_a_retry_settles_it() -> None:
    """Payment slower than order's read timeout: the charge happens after order gave up. The order is not
    failed (that would release the stock of a paid purchase, and a new attempt would charge again); the
    retry with the same key resumes it and payment answers the charge it recorded."""
    async with running_shop(PaymentSettings(delay_ms=300)) as shop:
        shop.hosts.read_timeout["/payments"] = 0.1
        ada = shop.user()
        before = await shop.stock("headlamp")
        await shop.fill_cart(ada, ("headlamp", 2))

        lost = await shop.checkout(ada, "k1")
        assert lost.status_code == 504, lost.text
        error = lost.json()["error"]
        assert error["code"] == "payment_outcome_unknown" and "same Idempotency-Key" in error["message"]
        order_id = error["details"]["order_id"]
        await asyncio.gather(*shop.hosts.late)  # payment finishes the charges order gave up on
        [payment] = await shop.docs(shop.payment, "payments")
        assert (payment["order_id"], payment["status"]) == (order_id, "succeeded")
        pending = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
        assert pending["status"] == "reserved"
        assert pending["status_history"][-1]["status"] == "payment_unknown"
        assert await shop.stock("headlamp") == before - 2  # still reserved for this purchase

        shop.payment.state.settings.delay_ms = 0  # payment is quick again
        settled = await shop.checkout(ada, "k1")
        assert settled.status_code == 201, settled.text
        order = settled.json()
        assert order["id"] == order_id and order["status"] == "paid"
        assert order["payment_id"] == payment["_id"]
        steps = [h["status"] for h in order["status_history"]]
        assert steps.index("payment_unknown") < steps.index("resumed") < steps.index("charged")
        assert len(await shop.docs(shop.payment, "payments")) == 1  # charged once
        assert await shop.stock("headlamp") == before - 2  # taken once


async def test_a_charge_still_in_progress_at_payment_is_not_a_failure(shop: Shop) -> None:
    busy = {"error": {"code": "payment_in_progress", "message": "a charge for this order is still running"}}
    shop.hosts.fake[("payment", "POST", "/payments")] = httpx.Response(409, json=busy)
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 503 and response.json()["error"]["code"] == "payment_outcome_unknown"
    assert await shop.stock("headlamp") == before - 1  # kept for the charge that may still succeed

    del shop.hosts.fake[("payment", "POST", "/payments")]
    settled = await shop.checkout(ada, "k1")
    assert settled.status_code == 201 and settled.json()["status"] == "paid"
    assert await shop.stock("headlamp") == before - 1
    assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_an_odd_success_answer_from_payment_is_not_taken_as_nothing_charged(shop: Shop) -> None:
    shop.hosts.fake[("payment", "POST", "/payments")] = httpx.Response(201, json={"status": "succeeded"})
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 502 and response.json()["error"]["code"] == "payment_outcome_unknown"
    assert await shop.stock("headlamp") == before - 1  # kept: a retry with the key settles it
    again = await shop.checkout(ada, "k1")  # still odd: the same open order, never a new attempt
    assert again.json()["error"]["details"]["order_id"] == response.json()["error"]["details"]["order_id"]
    assert len(await shop.docs(shop.order, "orders")) == 1


async def test_an_unreachable_payment_charged_nothing_so_the_order_fails_and_releases(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    shop.order.state.http = ServiceClient(
        shop.order.state.settings, transport=Refusing(shop.hosts, "payment")
    )
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 503 and response.json()["error"]["code"] == "dependency_unavailable"
    order_id = response.json()["error"]["details"]["order_id"]
    assert await shop.stock("headlamp") == before
    order = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
    assert order["status"] == "failed"


class Refusing(httpx.AsyncBaseTransport):
    """Connections to `host` are refused; everything else goes to `hosts`."""

    def __init__(self, hosts: Hosts, host: str) -> None:
        self.hosts, self.host = hosts, host

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self.host:
            raise httpx.ConnectError("connection refused (test)", request=request)
        return await self.hosts.handle_async_request(request)


async def test_declined_card_fails_the_order_and_the_same_key_replays_it(shop: Shop) -> None:
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    declined_body = {"shipping_address": ADDRESS, "card": DECLINED_CARD}

    declined = await shop.checkout(ada, "k-declined", declined_body)
    assert declined.status_code == 402
    error = declined.json()["error"]
    assert error["code"] == "card_declined"
    order_id = error["details"]["order_id"]
    assert await shop.stock("headlamp") == before  # released
    assert len((await shop.client.get("/cart", headers=ada)).json()["items"]) == 1  # cart kept

    replay = await shop.checkout(ada, "k-declined", declined_body)
    assert replay.status_code == 402 and replay.json()["error"]["details"]["order_id"] == order_id
    assert replay.headers["idempotent-replayed"] == "true"

    fresh = await shop.checkout(ada, "k-new")  # a new key is a new order
    assert fresh.status_code == 201 and fresh.json()["id"] != order_id
    stored = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
    assert stored["status"] == "failed" and stored["failure_reason"].startswith("card_declined")
    assert stored["status_history"][-1]["status"] == "failed"
    assert stored["status_history"][-1]["reason"] == stored["failure_reason"]
    # The replay answers the recorded failure: its message, the order and why it failed.
    assert error["message"] == "the card was declined"  # payment's words, passed on
    assert replay.json()["error"] == {
        "code": "card_declined",
        "message": "the card was declined",
        "details": {"order_id": order_id, "reason": stored["failure_reason"]},
    }


async def test_not_enough_stock_at_checkout_is_409_and_nothing_is_charged(shop: Shop) -> None:
    ada = shop.user()
    await shop.fill_cart(ada, ("chef-knife", 3))
    await shop.product.state.db["products"].update_one({"_id": "chef-knife"}, {"$set": {"stock": 2}})
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 409
    error = response.json()["error"]
    order_id = error["details"]["order_id"]
    message = "not enough stock for chef-knife: 3 requested, 2 available"  # product's words, passed on
    assert error == {
        "code": "insufficient_stock",
        "message": message,
        "details": {"order_id": order_id, "reason": f"insufficient_stock: {message}"},
    }
    assert await shop.docs(shop.payment, "payments") == []
    assert await shop.stock("chef-knife") == 2


async def test_stock_the_settler_gave_back_before_the_reservation_arrived_fails_the_order(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted interleaving: the order's units were reserved but the answer was lost, the settler gave the
    order up meanwhile (released them), and the repeat of the call finds the reservation released: the
    order fails, nothing is taken or charged."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    inventory = shop.order.state.inventory
    reserve = inventory.reserve

    async def given_back_meanwhile(order_id: str, items: list[tuple[str, int]]) -> Any:
        await reserve(order_id, items)  # reserved at product; the answer lost on the way back
        await inventory.release(order_id)  # the settler gave the order up
        return await reserve(order_id, items)  # the repeat

    monkeypatch.setattr(inventory, "reserve", given_back_meanwhile)
    response = await shop.checkout(ada, "k1")

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    order_id = error["details"]["order_id"]
    message = "this order's stock was given back meanwhile"
    assert error == {
        "code": "reservation_released",
        "message": message,
        "details": {"order_id": order_id, "reason": f"reservation_released: {message}"},
    }
    assert await shop.stock("headlamp") == before
    assert await shop.docs(shop.payment, "payments") == []


async def test_checkout_input_rules(shop: Shop) -> None:
    ada = shop.user()
    empty = await shop.checkout(ada, "k0")
    assert empty.status_code == 409
    assert empty.json()["error"] == {"code": "cart_empty", "message": "the cart is empty"}
    await shop.fill_cart(ada, ("headlamp", 1))

    missing = await shop.checkout(ada, None)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "idempotency_key_required"
    for bad in ("has space", "x" * 129, "ümlaut"):
        headers = {**ada, "Idempotency-Key": bad.encode()}
        invalid = await shop.client.post("/orders", json=CHECKOUT, headers=headers)
        assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_idempotency_key"

    assert (await shop.checkout(ada, "k1")).status_code == 201
    other_body = {"shipping_address": {**ADDRESS, "street": "Damrak 2"}, "card": GOOD_CARD}
    reused = await shop.checkout(ada, "k1", other_body)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"

    for body in (
        {"shipping_address": ADDRESS},
        {"shipping_address": {**ADDRESS, "country": "Netherlands"}, "card": GOOD_CARD},
        {**CHECKOUT, "card": {**GOOD_CARD, "number": "4242 4242 4242 4241"}},
        {**CHECKOUT, "card": {**GOOD_CARD, "expiry": "01/21"}},
        {**CHECKOUT, "total_cents": 1},
    ):
        assert (await shop.checkout(ada, "k2", body)).status_code == 422
    assert (
        await shop.client.post("/orders", json=CHECKOUT, headers={"Idempotency-Key": "k3"})
    ).status_code == 401


async def test_same_key_with_a_different_cart_is_409(shop: Shop) -> None:
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    declined = await shop.checkout(ada, "k1", {"shipping_address": ADDRESS, "card": DECLINED_CARD})
    assert declined.status_code == 402
    await shop.fill_cart(ada, ("chef-knife", 1))
    reused = await shop.checkout(ada, "k1", {"shipping_address": ADDRESS, "card": DECLINED_CARD})
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


KEY_REUSED = {
    "code": "idempotency_key_reused",
    "message": "this Idempotency-Key was used for a different checkout; use a new key",
}


async def test_a_reused_key_is_refused_with_the_order_it_names_and_a_paid_one_is_replayed(shop: Shop) -> None:
    """The key names one purchase: another address or card with it, or (while the purchase has not
    happened) another cart, is refused with the exact 409 naming the key's order; once paid, the same
    checkout replays the paid order though the cart has changed since (it was emptied by the purchase)."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    declined_body = {"shipping_address": ADDRESS, "card": DECLINED_CARD}
    declined = await shop.checkout(ada, "k-declined", declined_body)
    assert declined.status_code == 402, declined.text
    declined_id = declined.json()["error"]["details"]["order_id"]
    await shop.fill_cart(ada, ("chef-knife", 1))

    other_cart = await shop.checkout(ada, "k-declined", declined_body)
    assert other_cart.status_code == 409, other_cart.text
    assert other_cart.json()["error"] == {**KEY_REUSED, "details": {"order_id": declined_id}}
    assert "idempotent-replayed" not in other_cart.headers

    paid = await shop.checkout(ada, "k-paid")
    assert paid.status_code == 201, paid.text
    paid_id = paid.json()["id"]
    other_card = {**CHECKOUT, "card": {**GOOD_CARD, "cvc": "999"}}
    refused = await shop.checkout(ada, "k-paid", other_card)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == {**KEY_REUSED, "details": {"order_id": paid_id}}

    await shop.fill_cart(ada, ("insulated-bottle", 3))  # the cart moved on after the purchase
    replay = await shop.checkout(ada, "k-paid")
    assert replay.status_code == 201, replay.text
    assert (replay.json()["id"], replay.json()["status"]) == (paid_id, "paid")
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(await shop.docs(shop.payment, "payments")) == 2  # the decline's record and the one charge


async def test_notification_outage_does_not_fail_a_paid_order(shop: Shop) -> None:
    shop.hosts.down("notification", "POST", "/notifications")
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "paid"
    # the history says why no confirmation went out: notification's answer, for whoever looks at the order
    [entry] = [h for h in order["status_history"] if h["status"] == "notification_failed"]
    assert entry["reason"] == "unavailable: down for the test"
    assert [h["status"] for h in order["status_history"]][-2:] == ["notification_failed", "paid"]


async def test_shipping_outage_after_the_charge_refunds_and_releases(shop: Shop) -> None:
    shop.hosts.down("shipping", "POST", "/shipments")
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 503
    order_id = response.json()["error"]["details"]["order_id"]
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["order_id"] == order_id and payment["status"] == "refunded"
    assert await shop.stock("headlamp") == before
    history = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()["status_history"]
    assert [h["status"] for h in history][-4:] == ["charged", "released", "refunded", "failed"]


async def test_refund_is_retried_and_a_lasting_failure_is_recorded(shop: Shop) -> None:
    shop.hosts.down("shipping", "POST", "/shipments")
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    for key, failures, outcome, status in (
        ("k1", 2, "refunded", "refunded"),
        ("k2", 3, "refund_failed", "succeeded"),
    ):
        shop.hosts.flaky = {"/refund": failures}  # refunds answer 503 this many times
        response = await shop.checkout(ada, key)
        assert response.status_code == 503
        order_id = response.json()["error"]["details"]["order_id"]
        order = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
        [entry] = [h for h in order["status_history"] if h["status"] == outcome]
        if outcome == "refund_failed":  # an operator refunds by hand: the entry says what payment answered
            code, _, message = entry["reason"].partition(": ")
            assert code and message, entry
            # and the settler tries the refund again: the order is marked for it, its lease already over
            [stored] = await shop.docs(shop.order, "orders", {"_id": order_id})
            assert stored["undo_pending"] is True and stored["lease_until"] <= store.now_iso(), stored
        [payment] = await shop.docs(shop.payment, "payments", {"order_id": order_id})
        assert payment["status"] == status


async def test_orders_are_private_and_listed_newest_first(shop: Shop) -> None:
    ada, bob = shop.user("ada"), shop.user("bob")
    ids = []
    for key in ("k1", "k2"):
        await shop.fill_cart(ada, ("headlamp", 1))
        ids.append((await shop.checkout(ada, key)).json()["id"])
    listed = await shop.client.get("/orders", headers=ada)
    assert listed.status_code == 200
    assert [o["id"] for o in listed.json()["items"]] == ids[::-1]
    assert (await shop.client.get("/orders", headers=bob)).json() == {"items": []}
    assert (await shop.client.get(f"/orders/{ids[0]}", headers=bob)).status_code == 404
    assert (await shop.client.get("/orders/nope", headers=ada)).status_code == 404
    assert (await shop.client.get("/orders")).status_code == 401
    assert (await shop.client.get("/orders?limit=0", headers=ada)).status_code == 422


async def test_order_page_follows_the_shipment_and_notifies_once() -> None:
    """Opening the order page brings it up to date at once (here the background tracker is off)."""
    async with running_shop(ship_after_seconds=0.2, deliver_after_seconds=3, track_poll_seconds=3600) as shop:
        ada = shop.user()
        await shop.fill_cart(ada, ("headlamp", 1))
        order = (await shop.checkout(ada, "k1")).json()
        await asyncio.sleep(0.3)
        seen = await asyncio.gather(
            *(shop.client.get(f"/orders/{order['id']}", headers=ada) for _ in range(5))
        )
        assert {s.json()["status"] for s in seen} == {"shipped"}
        history = seen[0].json()["status_history"]
        assert [h["status"] for h in history].count("shipped") == 1
        kinds = [n["kind"] for n in await shop.docs(shop.notification, "outbox")]
        assert sorted(kinds) == ["order_confirmation", "shipment_update"]
        await asyncio.sleep(3)
        delivered = (await shop.client.get(f"/orders/{order['id']}", headers=ada)).json()
        assert delivered["status"] == "delivered"
        assert [h["status"] for h in delivered["status_history"]][-2:] == ["shipped", "delivered"]
        kinds = [n["kind"] for n in await shop.docs(shop.notification, "outbox")]
        assert sorted(kinds) == ["order_confirmation", "order_delivered", "shipment_update"]


async def test_shipments_progress_and_notify_without_anyone_looking() -> None:
    """Nobody opens the order page: the tracker moves the order to shipped and delivered, with the times
    shipping recorded (not when order noticed), and the shopper gets one notification per step."""
    async with running_shop(ship_after_seconds=0.3, deliver_after_seconds=0.9) as shop:
        ada = shop.user()
        await shop.fill_cart(ada, ("headlamp", 1))
        order = (await shop.checkout(ada, "k1")).json()
        for _ in range(200):
            kinds = {n["kind"] for n in await shop.docs(shop.notification, "outbox")}
            if "order_delivered" in kinds:
                break
            await asyncio.sleep(0.05)
        notes = await shop.docs(shop.notification, "outbox")
        assert sorted((n["kind"], n["user_id"], n["recipient"]) for n in notes) == [
            ("order_confirmation", "ada", "ada@example.com"),
            ("order_delivered", "ada", "ada@example.com"),
            ("shipment_update", "ada", "ada@example.com"),
        ]
        [stored] = await shop.docs(shop.order, "orders")
        assert stored["status"] == "delivered" and stored["track_at"] is None  # nothing left to follow
        [shipment] = await shop.docs(shop.shipping, "shipments")
        times = {h["status"]: h["at"] for h in stored["status_history"]}
        assert times["shipped"] == shipment["shipped_at"] and times["delivered"] == shipment["delivered_at"]
        assert [h["status"] for h in stored["status_history"]][-2:] == ["shipped", "delivered"]
        page = (await shop.client.get(f"/orders/{order['id']}", headers=ada)).json()
        assert page["status"] == "delivered"
        assert [(h["status"], h["at"]) for h in page["status_history"]] == [
            (h["status"], h["at"]) for h in stored["status_history"]
        ]
        assert len(await shop.docs(shop.notification, "outbox")) == 3  # opening the page sends nothing more


async def test_tracking_waits_for_a_shipping_outage_and_catches_up() -> None:
    async with running_shop(ship_after_seconds=0.2, deliver_after_seconds=0.4) as shop:
        shop.order.state.settings.track_interval_seconds = 0.5
        shop.hosts.fake_prefix = ("shipping", "GET", "/shipments/")
        ada = shop.user()
        await shop.fill_cart(ada, ("headlamp", 1))
        await shop.checkout(ada, "k1")
        await asyncio.sleep(1.5)
        [stored] = await shop.docs(shop.order, "orders")
        assert stored["status"] == "paid" and stored["track_at"]  # still due for a look
        shop.hosts.fake_prefix = None
        for _ in range(100):
            [stored] = await shop.docs(shop.order, "orders")
            if stored["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert stored["status"] == "delivered"


async def test_an_odd_answer_from_a_neighbour_fails_cleanly(shop: Shop) -> None:
    shop.hosts.fake[("shipping", "POST", "/shipping/quote")] = httpx.Response(200, json={"price": "free"})
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 502
    error = response.json()["error"]
    message = "unexpected answer from a dependency (KeyError)"
    assert error == {
        "code": "bad_gateway",
        "message": message,
        "details": {"order_id": error["details"]["order_id"], "reason": f"bad_gateway: {message}"},
    }
    assert await shop.stock("headlamp") == before
    assert await shop.docs(shop.payment, "payments") == []


async def test_an_odd_answer_from_shipping_after_the_charge_refunds_it(shop: Shop) -> None:
    """Shipping answers the shipment 201 with a body that names no shipment, after the card was charged:
    the order fails 502 bad_gateway, and the charge is refunded and the stock given back."""
    shop.hosts.fake[("shipping", "POST", "/shipments")] = httpx.Response(201, json={"status": "created"})
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_gateway"
    assert error["message"] == "unexpected answer from a dependency (KeyError)"
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["order_id"], payment["status"]) == (error["details"]["order_id"], "refunded")
    assert await shop.stock("headlamp") == before
    order = (await shop.client.get(f"/orders/{payment['order_id']}", headers=ada)).json()
    steps = [h["status"] for h in order["status_history"]]
    assert steps[-4:] == ["charged", "released", "refunded", "failed"]


async def test_a_checkout_whose_process_died_is_resumed_by_a_retry(shop: Shop) -> None:
    """Crash after the reservation: the order is stuck in `reserved`. A retry with the same key waits
    while the lease runs, then takes over; the steps are idempotent, so stock is taken once."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    principal = await shop.order.state.verifier.verify(ada["Authorization"].removeprefix("Bearer "))
    cart = await store.get_cart(shop.order.state.db, "ada")
    run = checkout.Checkout.of_app(shop.order)
    doc = await checkout._new_order(run, principal, "k1", cart, CheckoutIn.model_validate(CHECKOUT))
    await shop.order.state.inventory.reserve(doc["_id"], [("headlamp", 2)])
    await store.insert_order(
        shop.order.state.db, {**doc, "status": "reserved", "lease_until": store.now_iso(0.5)}
    )

    shop.order.state.settings.checkout_wait_seconds = 0.2
    busy = await shop.checkout(ada, "k1")
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"] == {
        "code": "checkout_in_progress",
        "message": "this checkout is still running",
        "details": {"order_id": doc["_id"]},
    }

    await asyncio.sleep(0.5)
    resumed = await shop.checkout(ada, "k1")
    assert resumed.status_code == 201, resumed.text
    order = resumed.json()
    assert order["id"] == doc["_id"] and order["status"] == "paid"
    assert "resumed" in [h["status"] for h in order["status_history"]]
    assert await shop.stock("headlamp") == before - 2
    assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_a_retry_arriving_while_another_resumes_a_dead_checkout_waits_for_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout's process died; one retry takes the order over (a new lease) and is held right there
    (planted: before it records "resumed"). A second retry with the same key arrives meanwhile: it must
    see the new lease and wait (409 checkout_in_progress once its wait is over), never resume the order a
    second time nor fail on it; the first retry then completes the purchase, charged once."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 2))
    principal = await shop.order.state.verifier.verify(ada["Authorization"].removeprefix("Bearer "))
    cart = await store.get_cart(shop.order.state.db, "ada")
    run = checkout.Checkout.of_app(shop.order)
    doc = await checkout._new_order(run, principal, "k1", cart, CheckoutIn.model_validate(CHECKOUT))
    await store.insert_order(
        shop.order.state.db, {**doc, "status": "pending", "lease_until": store.now_iso(-1)}
    )
    shop.order.state.settings.checkout_wait_seconds = 0.2

    taken_over, go_on = asyncio.Event(), asyncio.Event()
    record = store.record

    async def held_after_the_take_over(*args: Any, **kwargs: Any) -> Any:
        if any(entry.get("status") == "resumed" for entry in args[3:]):
            taken_over.set()
            await go_on.wait()
        return await record(*args, **kwargs)

    monkeypatch.setattr(store, "record", held_after_the_take_over)
    first = asyncio.create_task(shop.checkout(ada, "k1"))
    await asyncio.wait_for(taken_over.wait(), 10)

    second = await shop.checkout(ada, "k1")
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "checkout_in_progress"

    go_on.set()
    resumed = await first
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["id"] == doc["_id"] and resumed.json()["status"] == "paid"
    assert [h["status"] for h in resumed.json()["status_history"]].count("resumed") == 1
    assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_the_shoppers_pages_show_the_order_at_each_step_of_its_checkout(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkout is held before its reservation, then before its shipment (planted). The shopper's order
    list and the order's page show it at once: pending, created and updated at the same time, no shipping
    quoted yet (the total is the subtotal); then charged, with the payment and the quoted shipping in the
    total, no shipment yet; then the checkout completes."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 2))
    inventory, hosts = shop.order.state.inventory, shop.hosts
    reserve, forward = inventory.reserve, hosts.handle_async_request
    at_reserve, reserve_on, at_shipment, shipment_on = (asyncio.Event() for _ in range(4))

    async def held_reserve(order_id: str, items: list[tuple[str, int]]) -> Any:
        at_reserve.set()
        await reserve_on.wait()
        return await reserve(order_id, items)

    async def held_shipment(request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.host, request.url.path) == ("POST", "shipping", "/shipments"):
            at_shipment.set()
            await shipment_on.wait()
        return await forward(request)

    async def as_the_shopper_sees_it() -> dict[str, Any]:
        listed = await shop.client.get("/orders", headers=ada)
        assert listed.status_code == 200, listed.text
        [order] = listed.json()["items"]
        page = await shop.client.get(f"/orders/{order['id']}", headers=ada)
        assert page.status_code == 200, page.text
        assert page.json() == order
        return order

    monkeypatch.setattr(inventory, "reserve", held_reserve)
    hosts.handle_async_request = held_shipment  # type: ignore[method-assign]
    placing = asyncio.create_task(shop.checkout(ada, "k1"))

    await asyncio.wait_for(at_reserve.wait(), 10)
    order = await as_the_shopper_sees_it()
    assert [h["status"] for h in order["status_history"]] == ["pending"] == [order["status"]]
    assert order["updated_at"] == order["created_at"]
    subtotal = 2 * order["items"][0]["price_cents"]
    assert (order["subtotal_cents"], order["shipping_cents"], order["total_cents"]) == (subtotal, 0, subtotal)
    assert (order["payment_id"], order["shipment_id"], order["failure_reason"]) == (None, None, None)

    reserve_on.set()
    await asyncio.wait_for(at_shipment.wait(), 10)
    order = await as_the_shopper_sees_it()
    assert [h["status"] for h in order["status_history"]] == ["pending", "reserved", "charged"]
    assert order["status"] == "charged"
    [payment] = await shop.docs(shop.payment, "payments")
    assert (order["payment_id"], order["shipment_id"]) == (payment["_id"], None)
    assert order["total_cents"] == subtotal + order["shipping_cents"] == payment["amount_cents"]
    assert order["shipping_cents"] == 495 + 100  # 1,000 g: one started kilogram

    shipment_on.set()
    done = await placing
    assert done.status_code == 201, done.text
    assert done.json()["id"] == order["id"] and done.json()["status"] == "paid"


async def test_a_retry_while_the_first_request_is_still_working_waits_however_long_the_steps_take(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order's lease starts with the order and every step renews it: a same-key retry arriving while the
    first request is still at work (planted: held in the reservation, then in the charge, while order's clock
    moves on past the first lease) waits and is told 409 checkout_in_progress; it never takes the order over
    and runs the purchase a second time. The first request then completes it: paid once, never resumed."""
    shop.order.state.settler.cancel()  # only the shopper's retry could take this order over
    settings = shop.order.state.settings
    settings.checkout_lease_seconds, settings.checkout_wait_seconds = 30, 0.2
    real_now, ahead = clock.utc_now, [0.0]
    monkeypatch.setattr(clock, "utc_now", lambda: real_now() + timedelta(seconds=ahead[0]))
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    inventory, hosts = shop.order.state.inventory, shop.hosts
    reserve, forward = inventory.reserve, hosts.handle_async_request
    at_reserve, reserve_on, at_charge, charge_on = (asyncio.Event() for _ in range(4))
    first: asyncio.Task[httpx.Response] | None = None

    async def held_reserve(order_id: str, items: list[tuple[str, int]]) -> Any:
        if asyncio.current_task() is first:
            at_reserve.set()
            await reserve_on.wait()
            ahead[0] = 20  # the reservation took 20 s of order's clock: inside the first lease (30 s)
        return await reserve(order_id, items)

    async def held_charge(request: httpx.Request) -> httpx.Response:
        if asyncio.current_task() is first and (request.method, request.url.host) == ("POST", "payment"):
            at_charge.set()
            await charge_on.wait()
        return await forward(request)

    monkeypatch.setattr(inventory, "reserve", held_reserve)
    hosts.handle_async_request = held_charge  # type: ignore[method-assign]
    first = asyncio.create_task(shop.checkout(ada, "k1"))

    await asyncio.wait_for(at_reserve.wait(), 10)  # the lease the order started with still runs
    early = await asyncio.wait_for(shop.checkout(ada, "k1"), 10)
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "checkout_in_progress"

    reserve_on.set()
    await asyncio.wait_for(at_charge.wait(), 10)
    ahead[0] = 40  # past the order's first lease (30 s), inside the one its steps renewed (20 + 30 s)
    late = await asyncio.wait_for(shop.checkout(ada, "k1"), 10)
    assert late.status_code == 409, late.text
    assert late.json()["error"] == {
        "code": "checkout_in_progress",
        "message": "this checkout is still running",
        "details": {"order_id": early.json()["error"]["details"]["order_id"]},
    }

    charge_on.set()
    done = await first
    assert done.status_code == 201, done.text
    steps = [h["status"] for h in done.json()["status_history"]]
    assert steps == ["pending", "reserved", "charged", "shipment_created", "confirmation_sent", "paid"]
    assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_an_admin_refunds_through_order_which_records_it(shop: Shop) -> None:
    """The only way to refund: order asks payment with its own identity and records the refund."""
    ada, boss = shop.user("ada"), shop.tokens.headers(sub="boss", email="boss@example.com", groups=["admin"])
    await shop.fill_cart(ada, ("headlamp", 1))
    order = (await shop.checkout(ada, "k1")).json()
    url = f"/orders/{order['id']}/refund"
    body = {"reason": "damaged in transit"}

    assert (await shop.client.post(url, json=body, headers=ada)).status_code == 403  # not an admin
    direct = await shop.payment_client.post(f"/payments/{order['payment_id']}/refund", headers=boss)
    assert direct.status_code == 403  # not even an admin refunds behind order's back
    assert (await shop.client.post("/orders/nope/refund", json=body, headers=boss)).status_code == 404

    refunded = await shop.client.post(url, json=body, headers=boss)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "refunded"
    last = refunded.json()["status_history"][-1]
    assert last["status"] == "refunded" and last["reason"] == "by boss@example.com: damaged in transit"
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["status"] == "refunded"
    refund_calls = [c for c in shop.hosts.calls if c.url.path.endswith("/refund") and c.url.host == "payment"]
    principal = await shop.payment.state.verifier.verify(refund_calls[0].headers["authorization"][7:])
    assert principal.is_service("order")  # order's own token, not the admin's
    again = await shop.client.post(url, json=body, headers=boss)
    assert again.status_code == 200 and again.json()["status_history"] == refunded.json()["status_history"]
    seen = (await shop.client.get(f"/orders/{order['id']}", headers=ada)).json()
    assert seen["status"] == "refunded"
    notes = await shop.docs(shop.notification, "outbox", {"kind": "order_refunded"})
    assert [(n["user_id"], n["recipient"]) for n in notes] == [("ada", "ada@example.com")]
    replay = await shop.checkout(ada, "k1")  # the same key: still that (refunded) purchase, never a new one
    assert replay.status_code == 201 and replay.json()["id"] == order["id"]


async def test_only_a_paid_order_can_be_refunded(shop: Shop) -> None:
    ada, boss = shop.user("ada"), shop.tokens.headers(sub="boss", groups=["admin"])
    await shop.fill_cart(ada, ("headlamp", 1))
    declined = await shop.checkout(ada, "k1", {**CHECKOUT, "card": DECLINED_CARD})
    order_id = declined.json()["error"]["details"]["order_id"]
    refused = await shop.client.post(f"/orders/{order_id}/refund", json={"reason": "x"}, headers=boss)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_refundable"


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
async def test_planted_address_values_are_refused_as_everywhere(shop: Shop, field: str, value: str) -> None:
    """The one Address rule (services.contracts): refused before an order exists, nothing reserved."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    body = {"shipping_address": planted_address(field, value, ADDRESS), "card": GOOD_CARD}
    response = await shop.checkout(ada, "k-planted", body)
    assert_refused_field(response, field)
    assert await shop.docs(shop.order, "orders") == []
    assert await shop.stock("headlamp") == before
