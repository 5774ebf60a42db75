"""payment service: charges, idempotency per order id, test cards, refunds, fault knobs, provider mode."""

from __future__ import annotations

import concurrent.futures
import json
import random
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.kit.clock import now_iso
from services.kit.http import ServiceClient
from services.kit.testing import TokenFactory
from services.payment.app import build_app
from services.payment.settings import Settings

GOOD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
DECLINED = {"number": "4000 0000 0000 0002", "expiry": "12/39", "cvc": "123"}
NO_FUNDS = {"number": "4000000000009995", "expiry": "12/39", "cvc": "1234"}


def claim(payment_id: str, order_id: str, claimed_at: str) -> dict[str, object]:
    """A charge another request of the same order is processing now (claimed at `claimed_at`)."""
    return {
        "_id": payment_id,
        "id": payment_id,
        "order_id": order_id,
        "user_id": "u1",
        "status": "processing",
        "amount_cents": 2599,
        "currency": "EUR",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2039},
        "provider": "simulated",
        "created_at": claimed_at,
        "claimed_at": claimed_at,
    }


def charge_body(
    order_id: str = "order-1", amount: int = 2599, card: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"order_id": order_id, "amount_cents": amount, "currency": "EUR", "card": card or GOOD}


def test_charge_succeeds_and_stores_only_last4(
    client: TestClient, app: FastAPI, tokens: TokenFactory
) -> None:
    response = client.post("/payments", json=charge_body(), headers=tokens.headers(sub="u1"))
    assert response.status_code == 201
    assert response.headers["x-served-by"] == "payment/v1"
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert payment["order_id"] == "order-1" and payment["amount_cents"] == 2599
    assert payment["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2039}
    stored = client.portal.call(app.state.db["payments"].find_one, {"_id": payment["id"]})  # type: ignore[union-attr]
    assert "4242424242424242" not in json.dumps(stored, default=str)
    assert "123" not in json.dumps(stored.get("card"), default=str)

    fetched = client.get(f"/payments/{payment['id']}", headers=tokens.headers(sub="u1"))
    assert fetched.status_code == 200 and fetched.json() == payment


def card_number(prefix: str, length: int = 16) -> str:
    """A Luhn-valid number starting with `prefix` (the last digit is the check digit)."""
    body = prefix.ljust(length - 1, "0")
    for check in "0123456789":
        digits = [int(c) for c in reversed(body + check)]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


BRANDS = [
    *(("45", "visa"), ("41", "visa")),
    *((p, "mastercard") for p in ("51", "52", "53", "54", "55", "2221", "2500", "2720")),
    *(("50", "card"), ("56", "card"), ("2220", "card"), ("2721", "card")),  # just outside Mastercard's ranges
    *(("34", "amex"), ("37", "amex"), ("35", "card"), ("36", "card"), ("6011", "card")),
]


@pytest.mark.parametrize(("prefix", "brand"), BRANDS, ids=[f"{p}-{b}" for p, b in BRANDS])
def test_the_charge_names_the_cards_brand(
    client: TestClient, tokens: TokenFactory, prefix: str, brand: str
) -> None:
    """The receipt shows the brand by the number's leading digits (Visa 4, Mastercard 51-55 and 2221-2720,
    Amex 34/37, anything else a plain card) and the last four digits."""
    number = card_number(prefix, 15 if brand == "amex" else 16)
    card = {"number": number, "expiry": "12/39", "cvc": "123"}
    response = client.post(
        "/payments", json=charge_body(order_id=f"order-{prefix}", card=card), headers=tokens.headers(sub="u1")
    )
    assert response.status_code == 201, response.text
    assert response.json()["card"]["brand"] == brand
    assert response.json()["card"]["last4"] == number[-4:]


def test_same_order_id_returns_the_recorded_charge(client: TestClient, tokens: TokenFactory) -> None:
    headers = tokens.headers(sub="u1")
    first = client.post("/payments", json=charge_body(), headers=headers)
    again = client.post("/payments", json=charge_body(), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"

    other_amount = client.post("/payments", json=charge_body(amount=100), headers=headers)
    assert other_amount.status_code == 409
    assert other_amount.json()["error"]["code"] == "amount_mismatch"

    other_user = client.post("/payments", json=charge_body(), headers=tokens.headers(sub="u2"))
    assert other_user.status_code == 409


def test_concurrent_duplicates_give_one_charge(
    client: TestClient, app: FastAPI, tokens: TokenFactory
) -> None:
    headers = tokens.headers(sub="u1")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: client.post("/payments", json=charge_body(), headers=headers), range(16))
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    count = client.portal.call(app.state.db["payments"].count_documents, {})  # type: ignore[union-attr]
    assert count == 1


@pytest.mark.parametrize(("card", "code"), [(DECLINED, "card_declined"), (NO_FUNDS, "insufficient_funds")])
def test_test_cards_decline(
    client: TestClient, tokens: TokenFactory, card: dict[str, str], code: str
) -> None:
    headers = tokens.headers(sub="u1")
    response = client.post("/payments", json=charge_body(card=card), headers=headers)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == code and error["details"]["order_id"] == "order-1"
    # A repeat gets the recorded decline, not a new attempt.
    again = client.post("/payments", json=charge_body(card=card), headers=headers)
    assert again.status_code == 402 and again.json()["error"]["details"] == error["details"]


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({**GOOD, "number": "4242 4242 4242 4241"}, "number"),  # fails Luhn
        ({**GOOD, "number": "4242"}, "number"),
        ({**GOOD, "expiry": "01/20"}, "expiry"),  # expired
        ({**GOOD, "expiry": "13/39"}, "expiry"),
        ({**GOOD, "cvc": "12"}, "cvc"),
        ({**GOOD, "cvc": "12a"}, "cvc"),
    ],
)
def test_bad_cards_are_422_without_echoing_the_number(
    client: TestClient, tokens: TokenFactory, card: dict[str, str], field: str
) -> None:
    response = client.post("/payments", json=charge_body(card=card), headers=tokens.headers())
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "card", field]
    assert card["number"].replace(" ", "") not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "o1", "currency": "EUR", "card": GOOD},
        charge_body(amount=0),
        charge_body(amount=-5),
        {**charge_body(), "amount_cents": "2599"},
        {**charge_body(), "currency": "eur"},
        {**charge_body(), "order_id": "bad id!"},
        {**charge_body(), "extra": 1},
    ],
)
def test_bad_input_is_422(client: TestClient, tokens: TokenFactory, body: dict[str, Any]) -> None:
    response = client.post("/payments", json=body, headers=tokens.headers())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_malformed_json_token_and_unknown_ids(client: TestClient, tokens: TokenFactory) -> None:
    bad_json = client.post(
        "/payments", content=b"{nope", headers={**tokens.headers(), "content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert client.post("/payments", json=charge_body()).status_code == 401
    forged = TokenFactory().headers()  # a key the service does not trust
    assert client.post("/payments", json=charge_body(), headers=forged).status_code == 401
    assert client.get("/payments/nope", headers=tokens.headers()).status_code == 404
    assert client.post("/payments/nope/refund", headers=tokens.service_headers("order")).status_code == 404


def test_refund_and_lookup_by_order_answer_to_the_order_service_only(
    client: TestClient, tokens: TokenFactory
) -> None:
    """A shopper cannot refund their own paid order at payment (it would stay paid and ship), nor can an
    admin behind order's back: refunds go through order, which uses its own identity."""
    payment = client.post("/payments", json=charge_body(), headers=tokens.headers(sub="u1")).json()
    refund_url = f"/payments/{payment['id']}/refund"
    lookup_url = "/payments/by-order/order-1"
    for caller in (
        tokens.headers(sub="u1"),  # the payment's owner
        tokens.headers(sub="boss", groups=["customer", "admin"]),
        tokens.service_headers("shipping"),  # another service's own token
    ):
        for method, url in (("POST", refund_url), ("GET", lookup_url)):
            refused = client.request(method, url, headers=caller)
            assert refused.status_code == 403, (method, url, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
    assert client.get(f"/payments/{payment['id']}", headers=tokens.headers(sub="u1")).json()["status"] == (
        "succeeded"
    )
    assert client.post(refund_url).status_code == 401

    order = tokens.service_headers("order")
    found = client.get(lookup_url, headers=order)
    assert found.status_code == 200 and found.json()["id"] == payment["id"]
    assert client.get("/payments/by-order/never-charged", headers=order).status_code == 404
    refunded = client.post(refund_url, headers=order)
    assert refunded.status_code == 200
    assert refunded.json()["status"] == "refunded" and refunded.json()["refunded_at"]
    again = client.post(refund_url, headers=order)
    assert again.status_code == 200 and again.json()["refunded_at"] == refunded.json()["refunded_at"]
    assert client.get(lookup_url, headers=order).json()["status"] == "refunded"

    declined = client.post(
        "/payments", json=charge_body("o2", card=DECLINED), headers=tokens.headers(sub="u1")
    )
    payment_id = declined.json()["error"]["details"]["payment_id"]
    not_refundable = client.post(f"/payments/{payment_id}/refund", headers=order)
    assert not_refundable.status_code == 409
    assert not_refundable.json()["error"]["code"] == "not_refundable"
    assert client.get("/payments/by-order/o2", headers=order).json()["status"] == "declined"


def test_a_service_token_is_nobodys_account(client: TestClient, tokens: TokenFactory) -> None:
    """Order's own token cannot charge as if it were a shopper: user endpoints refuse service tokens."""
    charged = client.post("/payments", json=charge_body(), headers=tokens.service_headers("order"))
    assert charged.status_code == 403
    assert charged.json()["error"]["code"] == "user_token_required"


def test_failure_rate_answers_503_before_charging() -> None:
    app = build_app(Settings(failure_rate=1.0))
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        response = client.post("/payments", json=charge_body(), headers=tokens.headers())
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "simulated_failure"
        assert client.portal.call(app.state.db["payments"].count_documents, {}) == 0  # type: ignore[union-attr]
        assert client.get("/healthz").status_code == 200  # operational endpoints are never faulted


def test_failure_rate_is_a_share_of_requests() -> None:
    app = build_app(Settings(failure_rate=0.5))
    app.state.fault_random = random.Random(3)
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        codes = [
            client.post("/payments", json=charge_body(f"o{i}"), headers=tokens.headers()).status_code
            for i in range(40)
        ]
    assert set(codes) == {201, 503}
    assert 10 <= codes.count(503) <= 30


def test_delay_ms_slows_every_api_request() -> None:
    app = build_app(Settings(delay_ms=300))
    tokens = TokenFactory().trust_in(app)
    with TestClient(app) as client:
        started = time.perf_counter()
        assert client.post("/payments", json=charge_body(), headers=tokens.headers()).status_code == 201
        assert time.perf_counter() - started >= 0.3
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        assert time.perf_counter() - started < 0.3


def test_bad_fault_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        Settings(failure_rate=1.5)
    with pytest.raises(ValueError):
        Settings(delay_ms=-1)


class Provider:
    """A stand-in for the external provider, recording what it was sent."""

    def __init__(self, answer: httpx.Response | Exception) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def provider_app(provider: Provider) -> tuple[FastAPI, TokenFactory]:
    settings = Settings(provider_url="http://provider.example/")
    app = build_app(settings)
    app.state.http = ServiceClient(settings, transport=httpx.MockTransport(provider))
    return app, TokenFactory().trust_in(app)


def test_provider_mode_sends_the_documented_request() -> None:
    provider = Provider(httpx.Response(200, json={"id": "ch_1", "status": "succeeded"}))
    app, tokens = provider_app(provider)
    with TestClient(app) as client:
        response = client.post("/payments", json=charge_body(), headers=tokens.headers())
        assert response.status_code == 201 and response.json()["provider"] == "external"
        client.post("/payments", json=charge_body(), headers=tokens.headers())  # replay: no second call
    assert len(provider.requests) == 1
    sent = provider.requests[0]
    assert str(sent.url) == "http://provider.example/v1/charges"
    assert sent.headers["Idempotency-Key"] == "order-1"
    assert json.loads(sent.content) == {"amount_cents": 2599, "currency": "EUR", "reference": "order-1"}


def test_provider_decline_is_402() -> None:
    app, tokens = provider_app(Provider(httpx.Response(201, json={"id": "ch_2", "status": "declined"})))
    with TestClient(app) as client:
        response = client.post("/payments", json=charge_body(), headers=tokens.headers())
    assert response.status_code == 402 and response.json()["error"]["code"] == "card_declined"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (httpx.Response(500, text="boom"), 502, "provider_error"),
        (httpx.Response(200, text="not json"), 502, "provider_bad_response"),
        (httpx.Response(200, json={"id": "x", "status": "weird"}), 502, "provider_bad_response"),
        (httpx.ConnectError("refused"), 502, "provider_unavailable"),
        (httpx.ReadTimeout("slow"), 504, "provider_timeout"),
    ],
)
def test_provider_errors_are_502_or_504_and_retryable(
    answer: httpx.Response | Exception, status: int, code: str
) -> None:
    provider = Provider(answer)
    app, tokens = provider_app(provider)
    with TestClient(app) as client:
        response = client.post("/payments", json=charge_body(), headers=tokens.headers())
        assert response.status_code == status and response.json()["error"]["code"] == code
        provider.answer = httpx.Response(200, json={"id": "ch_3", "status": "succeeded"})
        retry = client.post("/payments", json=charge_body(), headers=tokens.headers())
        assert retry.status_code == 201  # the failed attempt left nothing behind
    assert [r.headers["Idempotency-Key"] for r in provider.requests] == ["order-1", "order-1"]


def test_a_charge_left_processing_by_a_dead_process_is_taken_over() -> None:
    app = build_app(Settings(stale_after_seconds=30, duplicate_wait_seconds=0.2))
    tokens = TokenFactory().trust_in(app)
    stuck = claim("p-stuck", "order-1", "2026-01-01T00:00:00.000000Z")
    with TestClient(app) as client:
        payments = app.state.db["payments"]
        client.portal.call(payments.insert_one, stuck)
        fresh = {**stuck, "_id": "p-busy", "id": "p-busy", "order_id": "order-2", "claimed_at": "9999"}
        client.portal.call(payments.insert_one, fresh)
        busy = client.post("/payments", json=charge_body("order-2"), headers=tokens.headers(sub="u1"))
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "payment_in_progress"

        response = client.post("/payments", json=charge_body(), headers=tokens.headers(sub="u1"))
        assert response.status_code == 201
        assert response.json()["id"] == "p-stuck" and response.json()["status"] == "succeeded"
        assert client.portal.call(payments.count_documents, {"order_id": "order-1"}) == 1


@pytest.mark.parametrize(
    ("card", "field", "kind"),
    [
        ({"expiry": "01/20"}, "expiry", "card_expired"),
        ({"expiry": "13/30"}, "expiry", "card_expiry_month"),
        ({"number": "4242 4242 4242 4241"}, "number", "card_number_luhn"),
        ({"number": "4242 4242 42x4 4242"}, "number", "card_number_length"),
    ],
)
def test_a_refused_card_says_which_field_and_why(
    client: TestClient, tokens: TokenFactory, card: dict[str, str], field: str, kind: str
) -> None:
    """The reason travels as the error type (order passes the details on; the web shop marks the field)."""
    response = client.post("/payments", json=charge_body(card={**GOOD, **card}), headers=tokens.headers())
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["loc"] == ["body", "card", field] and detail["type"] == kind


def test_charge_or_cancel_answers_the_order_service_only_and_fences_off_later_charges(
    client: TestClient, tokens: TokenFactory
) -> None:
    """Order settles a checkout it cannot finish by asking charge-or-cancel: a charge that happened is
    answered as it is; otherwise `canceled` is recorded and any later charge for the order is refused."""
    order = tokens.service_headers("order")
    for caller in (tokens.headers(sub="u1"), tokens.headers(sub="boss", groups=["customer", "admin"])):
        refused = client.post("/payments/by-order/o-late/cancel", headers=caller)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    canceled = client.post("/payments/by-order/o-late/cancel", headers=order)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled" and canceled.json()["amount_cents"] == 0
    again = client.post("/payments/by-order/o-late/cancel", headers=order)
    assert again.json()["id"] == canceled.json()["id"]  # one record per order
    late = client.post("/payments", json=charge_body("o-late"), headers=tokens.headers(sub="u1"))
    assert late.status_code == 409 and late.json()["error"]["code"] == "payment_canceled"
    assert client.get("/payments/by-order/o-late", headers=order).json()["status"] == "canceled"

    paid = client.post("/payments", json=charge_body("o-paid"), headers=tokens.headers(sub="u1")).json()
    kept = client.post("/payments/by-order/o-paid/cancel", headers=order)
    assert (
        kept.status_code == 200 and kept.json()["status"] == "succeeded" and kept.json()["id"] == paid["id"]
    )
    assert client.post("/payments/by-order/bad id!/cancel", headers=order).status_code == 422


def test_charge_or_cancel_waits_for_a_charge_in_progress_and_cancels_a_dead_one(
    client: TestClient, app: FastAPI, tokens: TokenFactory
) -> None:
    order = tokens.service_headers("order")
    db = app.state.db
    now = now_iso()
    claim = {
        "_id": "p-busy",
        "id": "p-busy",
        "order_id": "o-busy",
        "user_id": "u1",
        "status": "processing",
        "amount_cents": 100,
        "currency": "EUR",
        "card": None,
        "provider": "simulated",
        "created_at": now,
        "claimed_at": now,
    }
    client.portal.call(db.payments.insert_one, claim)  # type: ignore[union-attr]
    busy = client.post("/payments/by-order/o-busy/cancel", headers=order)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "payment_in_progress"
    dead = {**claim, "_id": "p-dead", "id": "p-dead", "order_id": "o-dead", "claimed_at": now_iso(-3600)}
    client.portal.call(db.payments.insert_one, dead)  # type: ignore[union-attr]
    canceled = client.post("/payments/by-order/o-dead/cancel", headers=order)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
