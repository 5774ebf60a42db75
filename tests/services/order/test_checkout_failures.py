"""order service, checkout when things go wrong, as the shopper sees it: payment's answer lost (500, 502,
503, 504 or a timeout, once and twice), an undo step that fails and the same key retried after it, two
shoppers using the same key. The real order, payment, shipping, notification and product apps in one process
(see in_process.py); `Hosts.lost` replaces payment's answer after payment handled the call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.contracts import CheckoutIn
from services.kit import ApiError
from services.order import checkout, settle, store
from tests.services.order.in_process import ADDRESS, CHECKOUT, DECLINED_CARD, Shop

pytestmark = pytest.mark.timeout(90)

CHARGE = ("POST", "/payments")
# What the shopper is told when payment's answer is lost twice: a 5xx of the path to payment is a bad
# gateway, except that 503 and 504 keep their meaning (kit's error_of).
OUTCOME_UNKNOWN_STATUS = {500: 502, 502: 502, 503: 503, 504: 504, "timeout": 504}
LOST = list(OUTCOME_UNKNOWN_STATUS)
# ...and why, in the error's details and the order's history (the last answer order got from payment).
OUTCOME_UNKNOWN_REASON = {
    500: "internal_error: internal error",
    502: "payment_error: payment answered 502",
    503: "payment_error: payment answered 503",
    504: "payment_error: payment answered 504",
    "timeout": "dependency_timeout: payment did not answer in time",
}
RETRY_WITH_THE_SAME_KEY = (
    "payment did not confirm the charge; retry with the same Idempotency-Key (it never charges twice)"
)


def charges(shop: Shop) -> list[httpx.Request]:
    return [
        c for c in shop.hosts.calls if (c.method, c.url.host, c.url.path) == ("POST", "payment", "/payments")
    ]


async def order_of(shop: Shop, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


@pytest.mark.parametrize("answer", LOST, ids=[str(a) for a in LOST])
async def test_a_lost_payment_answer_is_asked_again_once_and_the_purchase_completes(
    shop: Shop, answer: int | str
) -> None:
    """Payment charged, but its answer was lost on the way back: order asks once more (payment is idempotent
    per order id, so the repeat answers the recorded charge) and the shopper simply gets the paid order."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    shop.hosts.lost[CHARGE] = [answer]

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid"
    assert len(charges(shop)) == 2  # the one automatic re-ask, no more
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["_id"], payment["order_id"], payment["status"]) == (
        order["payment_id"],
        order["id"],
        "succeeded",
    )
    assert payment["amount_cents"] == order["total_cents"]
    assert await shop.stock("headlamp") == before - 2
    assert [h["status"] for h in order["status_history"]].count("charged") == 1


@pytest.mark.parametrize("answer", LOST, ids=[str(a) for a in LOST])
async def test_a_payment_answer_lost_twice_keeps_the_order_until_the_same_key_settles_it(
    shop: Shop, answer: int | str
) -> None:
    """Both answers lost: nobody knows whether the card was charged. The order is neither failed (that would
    release the stock of a purchase that may be paid, and a retry would charge again) nor left hanging: it
    keeps its stock, the shopper is told to retry with the same key, and that retry settles it."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    shop.hosts.lost[CHARGE] = [answer, answer]

    lost = await shop.checkout(ada, "k1")

    assert lost.status_code == OUTCOME_UNKNOWN_STATUS[answer], lost.text
    error = lost.json()["error"]
    assert (error["code"], error["message"]) == ("payment_outcome_unknown", RETRY_WITH_THE_SAME_KEY)
    order_id = error["details"]["order_id"]
    assert error["details"] == {"order_id": order_id, "reason": OUTCOME_UNKNOWN_REASON[answer]}
    assert len(charges(shop)) == 2  # asked again once, then gave the decision to the shopper's retry
    open_order = await order_of(shop, ada, order_id)
    assert open_order["status"] == "reserved"
    last = open_order["status_history"][-1]
    assert (last["status"], last["reason"]) == ("payment_unknown", OUTCOME_UNKNOWN_REASON[answer])
    assert await shop.stock("headlamp") == before - 2  # still reserved for a purchase that may be paid
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["order_id"], payment["status"]) == (order_id, "succeeded")  # it was charged, once

    settled = await shop.checkout(ada, "k1")

    assert settled.status_code == 201, settled.text
    order = settled.json()
    assert (order["id"], order["status"], order["payment_id"]) == (order_id, "paid", payment["_id"])
    assert len(await shop.docs(shop.payment, "payments")) == 1  # charged once
    assert len(await shop.docs(shop.order, "orders")) == 1  # no second order
    assert await shop.stock("headlamp") == before - 2  # taken once
    assert (await shop.client.get("/cart", headers=ada)).json()["items"] == []


async def test_a_charge_that_never_reached_payment_twice_is_charged_once_by_the_retry(shop: Shop) -> None:
    """A proxy answered 503 before payment saw anything, twice: order cannot tell that from a lost answer,
    so it keeps the order open; the retry charges once."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))
    shop.hosts.blocked[CHARGE] = [503, 503]

    lost = await shop.checkout(ada, "k1")
    assert lost.status_code == 503 and lost.json()["error"]["code"] == "payment_outcome_unknown"
    assert await shop.docs(shop.payment, "payments") == []
    assert await shop.stock("headlamp") == before - 1

    settled = await shop.checkout(ada, "k1")
    assert settled.status_code == 201 and settled.json()["status"] == "paid"
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["order_id"] == settled.json()["id"] and payment["status"] == "succeeded"
    assert await shop.stock("headlamp") == before - 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "simulated_failure"), (402, "card_declined"), (409, "amount_mismatch")],
)
async def test_an_answer_that_says_nothing_was_charged_is_final_at_once(
    shop: Shop, status: int, code: str
) -> None:
    """Payment said what happened (a fault injected before anything was done, a decline, a refusal): no
    re-ask, the order fails with payment's reason, the stock goes back, and the shopper sees the code."""
    body = {"error": {"code": code, "message": f"{code} (test)"}}
    shop.hosts.fake[("payment", *CHARGE)] = httpx.Response(status, json=body)
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))

    response = await shop.checkout(ada, "k1")

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert len(charges(shop)) == 1
    order = await order_of(shop, ada, error["details"]["order_id"])
    assert order["status"] == "failed" and order["failure_reason"].startswith(code)
    assert [h["status"] for h in order["status_history"]][-2:] == ["released", "failed"]
    assert await shop.stock("headlamp") == before


# --- the same key after an undo step failed ----------------------------------------------------------


async def test_a_retry_after_a_refund_that_failed_never_charges_again(shop: Shop) -> None:
    """Shipping fails after the charge and the refund fails too: the shopper's money is still taken. The
    same key again must answer that failed order, not start a new purchase that charges a second time."""
    shop.hosts.down("shipping", "POST", "/shipments")
    shop.hosts.flaky = {"/refund": 3}  # every refund attempt answers 503
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 1))

    failed = await shop.checkout(ada, "k1")
    assert failed.status_code == 503
    order_id = failed.json()["error"]["details"]["order_id"]
    order = await order_of(shop, ada, order_id)
    assert "refund_failed" in [h["status"] for h in order["status_history"]]

    del shop.hosts.fake[("shipping", "POST", "/shipments")]  # everything works again
    again = await shop.checkout(ada, "k1")

    assert again.status_code == 503, again.text
    assert again.json()["error"]["details"]["order_id"] == order_id
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await shop.docs(shop.order, "orders")) == 1
    assert len(charges(shop)) == 1
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["status"] == "succeeded"  # the one charge (to be refunded by hand), never a second
    assert await shop.stock("headlamp") == before


class ReleaseFailing:
    """order's Inventory client whose Release fails (product unreachable) while `failing`."""

    def __init__(self, inventory: Any) -> None:
        self.inventory, self.failing, self.releases = inventory, True, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inventory, name)

    async def release(self, order_id: str) -> Any:
        self.releases += 1
        if self.failing:
            raise ApiError(503, "inventory_unavailable", "product is unavailable (test)")
        return await self.inventory.release(order_id)


async def _checkout_whose_release_fails(
    shop: Shop,
) -> tuple[ReleaseFailing, dict[str, str], int, httpx.Response]:
    """Ada checks out two headlamps with key k1; the quote fails after the reservation and giving the stock
    back fails too: (the failing inventory, Ada, the stock before, the 503 answer)."""
    shop.hosts.down("shipping", "POST", "/shipping/quote")
    inventory = ReleaseFailing(shop.order.state.inventory)
    shop.order.state.inventory = inventory
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    failed = await shop.checkout(ada, "k1")
    assert failed.status_code == 503, failed.text
    return inventory, ada, before, failed


async def test_a_retry_after_a_release_that_failed_never_reserves_again(shop: Shop) -> None:
    """The quote fails after the reservation and giving the stock back fails too: the same key answers that
    failed order (its units stay out of stock until the settler gives them back: the test below), and it
    never takes them twice."""
    inventory, ada, before, failed = await _checkout_whose_release_fails(shop)
    order_id = failed.json()["error"]["details"]["order_id"]
    order = await order_of(shop, ada, order_id)
    assert [h["status"] for h in order["status_history"]][-2:] == ["release_failed", "failed"]
    assert inventory.releases == 3  # tried three times

    del shop.hosts.fake[("shipping", "POST", "/shipping/quote")]
    inventory.failing = False
    again = await shop.checkout(ada, "k1")

    assert again.status_code == 503, again.text
    assert again.json()["error"]["details"]["order_id"] == order_id
    assert len(await shop.docs(shop.order, "orders")) == 1
    assert await shop.docs(shop.payment, "payments") == []
    assert await shop.stock("headlamp") == before - 2  # held by the failed order, not taken a second time


async def test_stock_a_failed_checkout_could_not_give_back_is_given_back_by_the_settler(shop: Shop) -> None:
    """The quote fails after the reservation and product is unreachable while the checkout gives the stock
    back: the failed order is left to the settler, which returns the units once product answers (the
    order stays failed, its history says so)."""
    shop.order.state.settler.cancel()  # settled when the test asks, not by the background loop
    shop.order.state.settings.settle_grace_seconds = 0
    inventory, ada, before, failed = await _checkout_whose_release_fails(shop)
    order_id = failed.json()["error"]["details"]["order_id"]
    assert await shop.stock("headlamp") == before - 2

    inventory.failing = False  # product answers again
    assert await settle.settle_due(shop.order) == 1

    assert await shop.stock("headlamp") == before
    order = await order_of(shop, ada, order_id)
    assert order["status"] == "failed"
    assert [h["status"] for h in order["status_history"]][-3:] == ["release_failed", "failed", "released"]


async def test_a_retry_after_a_fully_undone_failure_is_a_new_attempt(shop: Shop) -> None:
    """The control for the two above: quote down, release works: the same key tries again, and buys."""
    shop.hosts.down("shipping", "POST", "/shipping/quote")
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    failed = await shop.checkout(ada, "k1")
    assert failed.status_code == 503
    first = failed.json()["error"]["details"]["order_id"]
    assert await shop.stock("headlamp") == before

    del shop.hosts.fake[("shipping", "POST", "/shipping/quote")]
    again = await shop.checkout(ada, "k1")
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first
    assert "idempotent-replayed" not in again.headers
    retired = await order_of(shop, ada, first)
    assert [h["status"] for h in retired["status_history"]][-1] == "retried"
    assert await shop.stock("headlamp") == before - 2


# --- identity ----------------------------------------------------------------------------------------


async def test_two_shoppers_using_the_same_key_get_their_own_orders(shop: Shop) -> None:
    """An Idempotency-Key is the shopper's own: bob's "k1" is not ada's "k1" (no replay of her order to
    him, no refusal as a reused key)."""
    ada, bob = shop.user("ada"), shop.user("bob")
    await shop.fill_cart(ada, ("headlamp", 1))
    await shop.fill_cart(bob, ("chef-knife", 2))

    first = await shop.checkout(ada, "k1")
    second = await shop.checkout(bob, "k1")

    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert [i["product_id"] for i in second.json()["items"]] == ["chef-knife"]
    payments = await shop.docs(shop.payment, "payments")
    assert sorted((p["user_id"], p["order_id"]) for p in payments) == sorted(
        [("ada", first.json()["id"]), ("bob", second.json()["id"])]
    )
    assert (await shop.client.get(f"/orders/{first.json()['id']}", headers=bob)).status_code == 404


async def test_a_failure_after_a_takeover_paid_the_order_gives_nothing_back(shop: Shop) -> None:
    """The first request is slow; its lease runs out and a takeover (the shopper's retry or the settler)
    charges, ships and records the order paid. Then the first request's shipping call fails: it must not
    release the stock of a paid, shipped order (an oversell) nor refund its charge (goods shipped unpaid),
    and the shopper is shown the paid order, not a failure."""
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    hosts = shop.hosts
    forward = hosts.handle_async_request

    async def takeover_pays_then_shipping_fails(request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.host, request.url.path) != ("POST", "shipping", "/shipments"):
            return await forward(request)
        await forward(request)  # the shipment exists: the takeover created it
        [order] = await shop.docs(shop.order, "orders")
        await shop.order.state.db["orders"].update_one({"_id": order["_id"]}, {"$set": {"status": "paid"}})
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "lost (test)"}})

    hosts.handle_async_request = takeover_pays_then_shipping_fails  # type: ignore[method-assign]

    response = await shop.checkout(ada, "k1")

    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "paid"
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["status"] == "succeeded"  # not refunded
    assert await shop.stock("headlamp") == before - 2  # not given back
    assert [c for c in hosts.calls if c.url.path.endswith("/refund")] == []


async def test_an_unknown_outcome_after_a_takeover_paid_the_order_leaves_the_paid_order_alone(
    shop: Shop,
) -> None:
    """Both charge answers are lost, and meanwhile a takeover (the shopper's retry or the settler) finished
    the order: the first request must not write "payment unknown" over the paid order nor end its lease."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    hosts = shop.hosts
    forward = hosts.handle_async_request
    hosts.lost[CHARGE] = [503, 503]
    finished: dict[str, Any] = {}

    async def takeover_pays_during_the_second_charge(request: httpx.Request) -> httpx.Response:
        response = await forward(request)
        charge = (request.method, request.url.host, request.url.path) == ("POST", "payment", "/payments")
        if charge and not hosts.lost[CHARGE]:  # the second lost answer: the takeover finishes the order now
            [order] = await shop.docs(shop.order, "orders")
            paid = {"status": "paid", "lease_until": "2999-01-01T00:00:00Z"}
            await shop.order.state.db["orders"].update_one({"_id": order["_id"]}, {"$set": paid})
            finished.update(await shop.order.state.db["orders"].find_one({"_id": order["_id"]}))
        return response

    hosts.handle_async_request = takeover_pays_during_the_second_charge  # type: ignore[method-assign]

    lost = await shop.checkout(ada, "k1")

    assert lost.json()["error"]["code"] == "payment_outcome_unknown", lost.text
    assert finished, "the takeover was not planted"
    [order] = await shop.docs(shop.order, "orders")
    assert order["status"] == "paid"
    assert order["status_history"] == finished["status_history"]  # no "payment_unknown" on a paid order
    assert order["lease_until"] == "2999-01-01T00:00:00Z"


async def test_a_decline_after_a_takeover_failed_the_order_answers_the_recorded_failure(shop: Shop) -> None:
    """While payment is deciding, a takeover (the shopper's retry or the settler) finishes the order as
    failed for a reason of its own. The decline that arrives then must not fail it again (no second
    release, no second history): the shopper gets the failure the order records."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    hosts, db = shop.hosts, shop.order.state.db
    forward = hosts.handle_async_request
    failure = {"status": 409, "code": "insufficient_stock", "message": "recorded by the takeover"}
    recorded: dict[str, Any] = {}

    async def takeover_fails_the_order_during_the_charge(request: httpx.Request) -> httpx.Response:
        response = await forward(request)
        charge = (request.method, request.url.host, request.url.path) == ("POST", "payment", "/payments")
        if charge and not recorded:
            [order] = await shop.docs(shop.order, "orders")
            fields = {"status": "failed", "failure": failure, "failure_reason": "insufficient_stock: gone"}
            await db["orders"].update_one({"_id": order["_id"]}, {"$set": fields})
            recorded.update(await db["orders"].find_one({"_id": order["_id"]}))
        return response

    hosts.handle_async_request = takeover_fails_the_order_during_the_charge  # type: ignore[method-assign]
    declined = {"shipping_address": ADDRESS, "card": DECLINED_CARD}
    answer = await shop.checkout(ada, "k1", declined)

    assert recorded, "the takeover was not planted"
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == {
        "code": "insufficient_stock",
        "message": "recorded by the takeover",
        "details": {"order_id": recorded["_id"], "reason": "insufficient_stock: gone"},
    }
    [order] = await shop.docs(shop.order, "orders")
    assert order["status_history"] == recorded["status_history"]  # the decline wrote nothing over it


@pytest.mark.parametrize(
    ("shipping_answers", "checkout_answers"), [(400, 409), (422, 409), (500, 502), (504, 504)]
)
async def test_a_shipping_quote_refused_or_failed_fails_the_order_with_a_status_of_its_own(
    shop: Shop, shipping_answers: int, checkout_answers: int
) -> None:
    """The shopper's request was fine when a neighbour refuses its part (4xx): the checkout answers 409 (the
    order cannot go through), never the neighbour's 400/422 as if the shopper had sent something wrong; a
    neighbour's failure is a 502, its gateway timeout a 504. The neighbour's code and words are kept."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    refusal = {"error": {"code": "no_route", "message": "we do not ship there"}}
    shop.hosts.fake[("shipping", "POST", "/shipping/quote")] = httpx.Response(shipping_answers, json=refusal)

    answer = await shop.checkout(ada, "k1")

    assert answer.status_code == checkout_answers, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == ("no_route", "we do not ship there")
    assert error["details"]["reason"] == "no_route: we do not ship there"
    # Once shipping answers again, the same key: a neighbour's failure (502/504) is tried again and the
    # purchase completes; a refusal (409) is final and replayed.
    del shop.hosts.fake[("shipping", "POST", "/shipping/quote")]
    again = await shop.checkout(ada, "k1")
    if checkout_answers == 409:
        assert again.status_code == 409 and again.json()["error"] == error
    else:
        assert again.status_code == 201 and again.json()["status"] == "paid", again.text


async def test_a_failure_never_overwrites_an_order_a_takeover_paid_while_it_was_undoing(shop: Shop) -> None:
    """Shipping is down after the charge: the checkout gives the stock back and refunds. Meanwhile (planted
    during the refund) a takeover finished the order as paid. The failure is answered to this request, but
    never written over the paid order: its status and history stay the takeover's."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    shop.hosts.down("shipping", "POST", "/shipments")
    hosts, db = shop.hosts, shop.order.state.db
    forward = hosts.handle_async_request
    finished: dict[str, Any] = {}

    async def takeover_pays_during_the_refund(request: httpx.Request) -> httpx.Response:
        refund = request.method == "POST" and request.url.path.endswith("/refund")
        if refund and not finished:
            [order] = await shop.docs(shop.order, "orders")
            await db["orders"].update_one({"_id": order["_id"]}, {"$set": {"status": "paid"}})
            finished.update(await db["orders"].find_one({"_id": order["_id"]}))
        return await forward(request)

    hosts.handle_async_request = takeover_pays_during_the_refund  # type: ignore[method-assign]
    answer = await shop.checkout(ada, "k1")

    assert finished, "the takeover was not planted"
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["details"]["order_id"] == finished["_id"]
    [order] = await shop.docs(shop.order, "orders")
    assert order["status"] == "paid"
    assert order["status_history"] == finished["status_history"]  # no "failed" written over it


async def test_a_charge_answered_with_an_odd_body_leaves_the_order_open_and_says_why(shop: Shop) -> None:
    """Payment answers 201 with a body that names no payment: it may have charged, and the payment to refund
    is unknown, so the order stays open (the same key settles it) and the answer and history say why."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    shop.hosts.fake[("payment", "POST", "/payments")] = httpx.Response(201, json={"odd": True})

    answer = await shop.checkout(ada, "k1")

    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payment_outcome_unknown"
    assert error["details"]["reason"] == "payment_error: payment sent an unexpected body"
    [order] = await shop.docs(shop.order, "orders")
    assert order["status"] == "reserved"
    assert order["status_history"][-1]["reason"] == "payment_error: payment sent an unexpected body"


async def test_a_charge_still_in_progress_at_payment_leaves_the_order_open_and_says_why(shop: Shop) -> None:
    """Payment answers 409 payment_in_progress (an earlier request of ours is still being charged): the
    outcome is not known yet, so the order stays open for the same key, answered 503 with payment's words."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    busy = {"error": {"code": "payment_in_progress", "message": "a charge for this order is in progress"}}
    shop.hosts.fake[("payment", "POST", "/payments")] = httpx.Response(409, json=busy)

    answer = await shop.checkout(ada, "k1")

    assert answer.status_code == 503, answer.text
    reason = "payment_in_progress: a charge for this order is in progress"
    assert answer.json()["error"]["details"]["reason"] == reason
    [order] = await shop.docs(shop.order, "orders")
    assert order["status"] == "reserved" and order["status_history"][-1]["reason"] == reason


async def test_a_simulated_failure_after_a_lost_charge_answer_never_fails_the_order(shop: Shop) -> None:
    """The charge reached payment (it charged) and its answer was lost as a 502; the automatic re-ask is
    then answered 503 simulated_failure. That says nothing was charged by the re-ask only: the first one
    may have charged, so the order must stay open for the same key, never fail (which would keep a charge
    nobody refunds)."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    hosts = shop.hosts
    forward = hosts.handle_async_request
    asked: list[int] = []

    async def lost_then_simulated_failure(request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.host, request.url.path) != ("POST", "payment", "/payments"):
            return await forward(request)
        asked.append(1)
        if len(asked) == 1:
            await forward(request)  # payment charges; the answer is lost on the way back
            return httpx.Response(502, json={"error": {"code": "bad_gateway", "message": "upstream reset"}})
        failure = {"error": {"code": "simulated_failure", "message": "simulated failure (FAILURE_RATE)"}}
        return httpx.Response(503, json=failure)

    hosts.handle_async_request = lost_then_simulated_failure  # type: ignore[method-assign]
    answer = await shop.checkout(ada, "k1")

    assert len(asked) == 2
    assert answer.json()["error"]["code"] == "payment_outcome_unknown", answer.text
    [order] = await shop.docs(shop.order, "orders")
    assert order["status"] == "reserved"  # open: the same key settles it with payment's recorded outcome
    [payment] = await shop.docs(shop.payment, "payments")
    assert payment["status"] == "succeeded"


@pytest.mark.parametrize("outcome", ["paid", "failed"])
async def test_an_order_a_takeover_finished_while_the_confirmation_was_sent_keeps_that_outcome(
    shop: Shop, outcome: str
) -> None:
    """The first request is slow after shipping; a takeover finishes the order meanwhile (paid, or given up
    as failed). The first request's `paid` never overwrites that: the shopper gets the order as the takeover
    left it (its history, one `paid`), or the failure it recorded, word for word."""
    ada = shop.user()
    await shop.fill_cart(ada, ("headlamp", 1))
    hosts = shop.hosts
    forward = hosts.handle_async_request
    failure = {"status": 503, "code": "checkout_interrupted", "message": "given up (test)"}

    async def takeover_while_confirming(request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.host) == ("POST", "notification"):
            [order] = await shop.docs(shop.order, "orders")
            fields: dict[str, Any] = {"status": outcome}
            if outcome == "failed":
                fields.update(failure=failure, failure_reason="checkout_interrupted: given up (test)")
            entry = {"status": outcome, "at": order["updated_at"], "reason": "by the takeover (test)"}
            await shop.order.state.db["orders"].update_one(
                {"_id": order["_id"]}, {"$set": fields, "$push": {"status_history": entry}}
            )
        return await forward(request)

    hosts.handle_async_request = takeover_while_confirming  # type: ignore[method-assign]

    response = await shop.checkout(ada, "k1")

    [stored] = await shop.docs(shop.order, "orders")
    statuses = [h["status"] for h in stored["status_history"]]
    assert statuses[-1] == outcome and statuses.count("paid") == (outcome == "paid")
    assert stored["status_history"][-1]["reason"] == "by the takeover (test)"
    if outcome == "paid":
        assert response.status_code == 201, response.text
        order = response.json()
        assert (order["id"], order["status"]) == (stored["_id"], "paid")
        assert [(h["status"], h["at"]) for h in order["status_history"]] == [
            (h["status"], h["at"]) for h in stored["status_history"]
        ]
    else:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == {
            "code": "checkout_interrupted",
            "message": "given up (test)",
            "details": {"order_id": stored["_id"], "reason": "checkout_interrupted: given up (test)"},
        }


async def test_a_resumed_checkout_that_was_charged_before_it_died_refunds_when_it_then_fails(
    shop: Shop,
) -> None:
    """The process died right after recording the charge; the shopper's retry resumes the order, and the
    resume fails before its own charge step (shipping's quote down): the charge made before the crash is
    refunded and the stock given back, not left standing on a failed order."""
    shop.order.state.settler.cancel()  # the retry, not the settler, takes this order over
    ada = shop.user()
    before = await shop.stock("headlamp")
    await shop.fill_cart(ada, ("headlamp", 2))
    principal = await shop.order.state.verifier.verify(ada["Authorization"].removeprefix("Bearer "))
    cart = await store.get_cart(shop.order.state.db, "ada")
    run = checkout.Checkout.of_app(shop.order)
    doc = await checkout._new_order(run, principal, "k1", cart, CheckoutIn.model_validate(CHECKOUT))
    await shop.order.state.inventory.reserve(doc["_id"], [("headlamp", 2)])
    card = {k: v for k, v in CHECKOUT.items() if k != "shipping_address"}
    charge = {**card, "order_id": doc["_id"], "amount_cents": doc["total_cents"] + 595, "currency": "EUR"}
    charged = await shop.payment_client.post("/payments", json=charge, headers=ada)
    assert charged.status_code == 201, charged.text
    payment_id = charged.json()["id"]
    died = {"status": "charged", "payment_id": payment_id, "lease_until": store.now_iso(-60)}
    await store.insert_order(shop.order.state.db, {**doc, **died})
    shop.hosts.down("shipping", "POST", "/shipping/quote")

    response = await shop.checkout(ada, "k1")

    assert response.status_code == 503, response.text
    assert response.json()["error"]["details"]["order_id"] == doc["_id"]
    [payment] = await shop.docs(shop.payment, "payments")
    assert (payment["_id"], payment["status"]) == (payment_id, "refunded")
    assert await shop.stock("headlamp") == before
    order = await order_of(shop, ada, doc["_id"])
    assert order["status"] == "failed"
    assert [h["status"] for h in order["status_history"]][-5:] == [
        "resumed",
        "reserved",
        "released",
        "refunded",
        "failed",
    ]
