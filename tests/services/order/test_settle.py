"""order service, settling checkouts nobody finishes (services/order/settle.py): a process that died
mid-checkout, a payment answer lost and never retried, an undo that failed. The real order, payment,
product, shipping and notification apps in one process (tests/services/order/in_process.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.contracts import CheckoutIn
from services.order import checkout, settle, store
from services.payment.settings import Settings as PaymentSettings
from tests.services.order.in_process import CHECKOUT, Shop, running_shop

pytestmark = pytest.mark.timeout(90)


def without_the_loop(shop: Shop) -> Shop:
    """Stop order's background settler, so that a test settles exactly when it calls settle_due."""
    shop.order.state.settler.cancel()
    return shop


async def crashed_checkout(shop: Shop, status: str, key: str = "k1", reserve: bool = True) -> str:
    """What an order process that died mid-checkout leaves: an order in `status`, its lease run out."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 2))
    principal = await shop.order.state.verifier.verify(ada["Authorization"].removeprefix("Bearer "))
    cart = await store.get_cart(shop.order.state.db, "ada")
    doc = await checkout._new_order(
        checkout.Checkout.of_app(shop.order), principal, key, cart, CheckoutIn.model_validate(CHECKOUT)
    )
    if reserve:
        await shop.order.state.inventory.reserve(doc["_id"], [("headlamp", 2)])
    await store.track_open(shop.order.state.db, doc["_id"])  # as place_order does, before the order
    await store.insert_order(
        shop.order.state.db, {**doc, "status": status, "lease_until": store.now_iso(-60)}
    )
    return str(doc["_id"])


async def order_doc(shop: Shop, order_id: str) -> dict[str, object]:
    doc = await store.get_order(shop.order.state.db, order_id)
    assert doc is not None
    return doc


async def test_a_checkout_that_died_before_the_charge_is_given_up_and_its_stock_released(shop: Shop) -> None:
    without_the_loop(shop)
    before = await shop.stock("headlamp")
    order_id = await crashed_checkout(shop, "reserved")
    assert await shop.stock("headlamp") == before - 2

    assert await settle.settle_due(shop.order) == 1
    order = await order_doc(shop, order_id)
    assert order["status"] == "failed" and order["failure"]["code"] == "checkout_interrupted"  # type: ignore[index]
    assert [h["status"] for h in order["status_history"]][-3:] == ["settling", "released", "failed"]  # type: ignore[attr-defined]
    assert await shop.stock("headlamp") == before
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["order_id"], payment["status"]) == (order_id, "canceled")

    # The shopper comes back with the same key: a new attempt, charged once.
    retried = await shop.checkout(shop.user(), "k1")
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] != order_id and retried.json()["status"] == "paid"
    assert await shop.stock("headlamp") == before - 2


async def test_a_charge_whose_answer_was_lost_and_never_retried_becomes_a_paid_order() -> None:
    """Payment slower than order's timeout, the shopper never retries: the settler asks payment, finds
    the charge, and finishes the purchase (shipment, confirmation) without the shopper."""
    async with running_shop(PaymentSettings(delay_ms=300)) as shop:
        shop.hosts.read_timeout["/payments"] = 0.1
        ada = shop.user()
        before = await shop.stock("headlamp")
        await shop.fill_cart(ada, ("headlamp", 2))
        lost = await shop.checkout(ada, "k1")
        assert lost.status_code == 504 and lost.json()["error"]["code"] == "payment_outcome_unknown"
        order_id = lost.json()["error"]["details"]["order_id"]
        await asyncio.gather(*shop.hosts.late)  # payment charged after order gave up
        without_the_loop(shop).order.state.settings.settle_grace_seconds = 0

        assert await settle.settle_due(shop.order) == 1
        order = (await shop.client.get(f"/orders/{order_id}", headers=ada)).json()
        assert order["status"] == "paid" and order["shipment_id"], order
        steps = [h["status"] for h in order["status_history"]]
        assert steps.index("payment_unknown") < steps.index("settling") < steps.index("paid")
        [payment] = await shop.docs(shop.payment, "payments")
        assert payment["status"] == "succeeded" and order["payment_id"] == payment["_id"]
        assert await shop.stock("headlamp") == before - 2
        notes = await shop.docs(shop.notification, "outbox", {"kind": "order_confirmation"})
        assert [n["order_id"] for n in notes] == [order_id]
        assert await settle.settle_due(shop.order) == 0  # nothing left to settle


async def test_a_checkout_that_died_after_the_charge_is_finished(shop: Shop) -> None:
    without_the_loop(shop)
    order_id = await crashed_checkout(shop, "reserved")
    charge = {**CHECKOUT, "order_id": order_id, "amount_cents": 1, "currency": "EUR"}
    del charge["shipping_address"]
    order = await order_doc(shop, order_id)
    charge["amount_cents"] = order["total_cents"]
    charged = await shop.payment_client.post("/payments", json=charge, headers=shop.user())
    assert charged.status_code == 201, charged.text

    assert await settle.settle_due(shop.order) == 1
    order = await order_doc(shop, order_id)
    assert order["status"] == "paid" and order["payment_id"] == charged.json()["id"]
    assert len(await shop.docs(shop.payment, "payments")) == 1


async def test_a_release_that_failed_is_done_later(shop: Shop) -> None:
    """Product down while a failed checkout gave its stock back: recorded release_failed, then the
    settler releases it once product answers (the order stays failed, the key stays used)."""
    without_the_loop(shop)
    before = await shop.stock("headlamp")
    order_id = await crashed_checkout(shop, "reserved")
    await store.record(
        shop.order.state.db,
        order_id,
        {"status": "failed", "undo_pending": True, "failure": {"status": 503, "code": "x", "message": "x"}},
        store.entry("release_failed", "dependency_unavailable: inventory is unavailable"),
        store.entry("failed"),
    )
    assert await shop.stock("headlamp") == before - 2
    assert await settle.settle_due(shop.order) == 1
    order = await order_doc(shop, order_id)
    assert order["undo_pending"] is False and order["status"] == "failed"
    assert "released" in [h["status"] for h in order["status_history"]]  # type: ignore[attr-defined]
    assert await shop.stock("headlamp") == before


async def test_payment_down_leaves_the_order_for_the_next_round(shop: Shop) -> None:
    without_the_loop(shop)
    before = await shop.stock("headlamp")
    order_id = await crashed_checkout(shop, "reserved")
    shop.hosts.down("payment", "POST", f"/payments/by-order/{order_id}/cancel")
    assert await settle.settle_due(shop.order) == 1
    order = await order_doc(shop, order_id)
    assert order["status"] == "reserved" and await shop.stock("headlamp") == before - 2
    assert await settle.settle_due(shop.order) == 0  # not due again before SETTLE_RETRY_SECONDS


async def test_the_background_loop_settles_without_being_asked(shop: Shop) -> None:
    before = await shop.stock("headlamp")
    order_id = await crashed_checkout(shop, "pending", reserve=False)
    shop.order.state.settings.settle_grace_seconds = 0
    for _ in range(100):  # the loop looks every SETTLE_POLL_SECONDS (1 s)
        if (await order_doc(shop, order_id))["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    assert (await order_doc(shop, order_id))["status"] == "failed"
    assert await shop.stock("headlamp") == before


async def test_a_charge_whose_answer_was_cut_off_is_not_taken_for_nothing_charged(shop: Shop) -> None:
    """Payment records the charge and dies before answering; order's second try finds it down (connection
    refused). That refusal says nothing about the first try: the order stays open (never failed with its
    stock released while the shopper is charged), and the settler finishes it as paid."""
    without_the_loop(shop)
    before = await shop.stock("headlamp")
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    forward = shop.hosts.handle_async_request
    tries = []

    async def payment_dies_after_charging(request: httpx.Request) -> httpx.Response:
        if request.url.host == "payment" and request.url.path == "/payments":
            tries.append(request)
            if len(tries) == 1:
                await forward(request)  # charged and recorded ...
                raise httpx.RemoteProtocolError("server disconnected", request=request)  # ... answer lost
            raise httpx.ConnectError("connection refused", request=request)  # down now
        return await forward(request)

    shop.hosts.handle_async_request = payment_dies_after_charging  # type: ignore[method-assign]
    response = await shop.checkout(ada, "k1")
    assert response.status_code == 503 and response.json()["error"]["code"] == "payment_outcome_unknown"
    order_id = response.json()["error"]["details"]["order_id"]
    assert (await order_doc(shop, order_id))["status"] == "reserved"
    assert await shop.stock("headlamp") == before - 1

    shop.hosts.handle_async_request = forward  # type: ignore[method-assign]
    shop.order.state.settings.settle_grace_seconds = 0
    assert await settle.settle_due(shop.order) == 1
    order = await order_doc(shop, order_id)
    assert order["status"] == "paid"
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["status"] == "succeeded" and order["payment_id"] == payment["_id"]
