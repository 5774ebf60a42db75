"""payment service: the exact answers a caller reads when a charge is refused, canceled, not found or
still in progress (order passes them on to the shopper)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.kit.clock import now_iso
from services.kit.testing import TokenFactory
from services.payment import store
from services.payment.app import build_app
from services.payment.settings import Settings
from tests.services.payment.test_api import DECLINED, Provider, charge_body, claim, provider_app


def test_a_charge_after_order_gave_the_order_up_is_refused_with_both_ids(
    client: TestClient, tokens: TokenFactory
) -> None:
    canceled = client.post("/payments/by-order/o-late/cancel", headers=tokens.service_headers("order")).json()
    late = client.post("/payments", json=charge_body("o-late"), headers=tokens.headers(sub="u1"))
    assert late.status_code == 409
    assert late.json() == {
        "error": {
            "code": "payment_canceled",
            "message": "the order service gave this order up before it was charged; nothing was charged",
            "details": {"payment_id": canceled["id"], "order_id": "o-late"},
        }
    }


def test_a_payment_nobody_may_see_is_not_found_like_one_that_does_not_exist(
    client: TestClient, tokens: TokenFactory
) -> None:
    ada_paid = client.post("/payments", json=charge_body("o-ada"), headers=tokens.headers(sub="ada")).json()
    not_found = {"error": {"code": "payment_not_found", "message": "no such payment"}}
    for payment_id, caller in (("nope", "ada"), (ada_paid["id"], "bob")):
        answer = client.get(f"/payments/{payment_id}", headers=tokens.headers(sub=caller))
        assert (answer.status_code, answer.json()) == (404, not_found)
    admin = tokens.headers(sub="boss", groups=["customer", "admin"])
    assert client.get(f"/payments/{ada_paid['id']}", headers=admin).json()["id"] == ada_paid["id"]


def test_a_duplicate_waits_for_the_charge_in_progress_and_answers_its_outcome(
    client: TestClient, app: FastAPI, tokens: TokenFactory
) -> None:
    """The same order charged again while the first request is still at the card processor: the second
    waits (up to DUPLICATE_WAIT_SECONDS, 10 s by default) and answers the recorded charge, replayed."""
    payments = app.state.db["payments"]
    client.portal.call(payments.insert_one, claim("p-first", "o-1", now_iso()))
    answers: list[httpx.Response] = []
    duplicate = threading.Thread(
        target=lambda: answers.append(
            client.post("/payments", json=charge_body("o-1"), headers=tokens.headers(sub="u1"))
        )
    )
    duplicate.start()
    time.sleep(0.5)  # the duplicate is waiting: the first request finishes now
    done = {"$set": {"status": "succeeded", "decline_code": None, "provider_charge_id": None}}
    client.portal.call(payments.update_one, {"_id": "p-first"}, done)
    duplicate.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 201, answer.text
    assert (answer.json()["id"], answer.json()["status"]) == ("p-first", "succeeded")
    assert answer.headers["idempotent-replayed"] == "true"


def test_a_duplicate_gives_up_waiting_on_a_live_charge_without_taking_it_over() -> None:
    """A claim younger than STALE_AFTER_SECONDS belongs to a live request: a duplicate waits for it
    (DUPLICATE_WAIT_SECONDS) and then answers payment_in_progress (retry later); it never charges itself."""
    app = build_app(Settings(duplicate_wait_seconds=0.3, stale_after_seconds=30))
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        payments = app.state.db["payments"]
        client.portal.call(payments.insert_one, claim("p-live", "o-1", now_iso(-20)))  # 20 s old: alive
        answer = client.post("/payments", json=charge_body("o-1"), headers=tokens.headers(sub="u1"))
        assert answer.status_code == 409
        assert answer.json() == {
            "error": {
                "code": "payment_in_progress",
                "message": "a charge for this order is still being processed",
            }
        }
        assert client.portal.call(payments.find_one, {"_id": "p-live"})["status"] == "processing"


def test_a_charge_for_somebody_elses_order_or_another_amount_is_refused_exactly(
    client: TestClient, tokens: TokenFactory
) -> None:
    first = client.post("/payments", json=charge_body("o-1", amount=2599), headers=tokens.headers(sub="u1"))
    other_user = client.post("/payments", json=charge_body("o-1"), headers=tokens.headers(sub="u2"))
    assert (other_user.status_code, other_user.json()) == (
        409,
        {"error": {"code": "order_id_conflict", "message": "this order id belongs to another payment"}},
    )
    other_amount = client.post(
        "/payments", json=charge_body("o-1", amount=100), headers=tokens.headers(sub="u1")
    )
    assert (other_amount.status_code, other_amount.json()) == (
        409,
        {
            "error": {
                "code": "amount_mismatch",
                "message": "this order was already charged with a different amount",
                "details": {"payment_id": first.json()["id"], "amount_cents": 2599},
            }
        },
    )


def test_a_decline_is_402_with_the_reason_and_replayed_as_such(
    client: TestClient, tokens: TokenFactory
) -> None:
    first = client.post("/payments", json=charge_body("o-1", card=DECLINED), headers=tokens.headers(sub="u1"))
    assert first.status_code == 402
    payment_id = first.json()["error"]["details"]["payment_id"]
    assert first.json() == {
        "error": {
            "code": "card_declined",
            "message": "the card was declined",
            "details": {"payment_id": payment_id, "order_id": "o-1"},
        }
    }
    assert "idempotent-replayed" not in first.headers  # this request declined it
    again = client.post("/payments", json=charge_body("o-1", card=DECLINED), headers=tokens.headers(sub="u1"))
    assert (again.status_code, again.json()) == (402, first.json())
    assert again.headers["idempotent-replayed"] == "true"  # the recorded decline, not a new attempt


def test_a_charge_whose_claim_was_canceled_meanwhile_answers_canceled_not_charged(
    client: TestClient, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card processor was slow: order, settling the checkout, canceled the claim as dead before the
    outcome was recorded. The outcome is not written over the cancel; the caller hears payment_canceled."""
    finish = store.finish

    async def canceled_first(db: Any, payment_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        await db["payments"].update_one({"_id": payment_id}, {"$set": {"status": "canceled"}})
        return await finish(db, payment_id, fields)

    monkeypatch.setattr(store, "finish", canceled_first)
    answer = client.post("/payments", json=charge_body("o-1"), headers=tokens.headers(sub="u1"))
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "payment_canceled"
    assert answer.json()["error"]["details"]["order_id"] == "o-1"


def test_a_provider_charge_is_recorded_with_the_providers_charge_id() -> None:
    """What reconciliation with the provider needs: the provider's own id of the charge, on the payment."""
    app, tokens = provider_app(Provider(httpx.Response(200, json={"id": "ch_9", "status": "succeeded"})))
    with TestClient(app) as client:
        paid = client.post("/payments", json=charge_body("o-9"), headers=tokens.headers()).json()
        recorded = client.portal.call(app.state.db["payments"].find_one, {"_id": paid["id"]})
    assert (recorded["status"], recorded["provider_charge_id"]) == ("succeeded", "ch_9")


def test_a_simulated_failure_says_it_is_one() -> None:
    """FAILURE_RATE's 503 names itself, so a student reading the answer knows it was injected on purpose."""
    app = build_app(Settings(failure_rate=1.0))
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        answer = client.post("/payments", json=charge_body(), headers=tokens.headers())
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": {"code": "simulated_failure", "message": "simulated failure (FAILURE_RATE)"}},
    )
