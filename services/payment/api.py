"""Payment API: POST /payments (idempotent per order id), GET /payments/{id}; for the order service only
(its own token): POST /payments/{id}/refund, GET /payments/by-order/{order_id} and
POST /payments/by-order/{order_id}/cancel."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.contracts import CardIn
from services.contracts.card import parse_expiry
from services.kit import ApiError, clock
from services.kit.clock import now_iso
from services.kit.db import Database
from services.kit.deps import AppSettings, CurrentUser, Db, Http, app_state
from services.kit.http import ServiceClient
from services.kit.jwt import Principal
from services.kit.security import require_service
from services.payment import cards, provider, store
from services.payment.settings import Settings

log = logging.getLogger("payment.api")
REPLAY_HEADER = "Idempotent-Replayed"


async def inject_faults(request: Request, settings: AppSettings[Settings]) -> None:
    """FAILURE_RATE and DELAY_MS: applied to every API request before anything else happens."""
    if settings.delay_ms:
        await asyncio.sleep(settings.delay_ms / 1000)
    if settings.failure_rate and app_state(request).fault_random.random() < settings.failure_rate:
        raise ApiError(503, "simulated_failure", "simulated failure (FAILURE_RATE)")


router = APIRouter(tags=["payments"], dependencies=[Depends(inject_faults)])
# Refunds and lookups by order id answer to the order service alone: order owns the order's state, so it
# learns of every refund (admins refund through order's API) and a shopper cannot refund a paid order.
OrderService = Annotated[Principal, Depends(require_service("order"))]


ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["9f1c2e3d4b5a69788796a5b4c3d2e1f0"])
    amount_cents: int = Field(strict=True, ge=1, le=100_000_000, examples=[2599])
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    card: CardIn


class CardOut(BaseModel):
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class PaymentOut(BaseModel):
    id: str
    order_id: str
    status: Literal["processing", "succeeded", "declined", "refunded", "canceled"] = Field(
        description="`canceled`: the order service gave the order up before any charge; nothing was charged "
        "and no charge for this order will ever succeed (amount 0, no card)"
    )
    amount_cents: int
    currency: str | None
    card: CardOut | None
    provider: Literal["simulated", "external"] | None
    decline_code: str | None = None
    created_at: str
    refunded_at: str | None = None
    canceled_at: str | None = None


def _out(doc: dict[str, Any]) -> PaymentOut:
    return PaymentOut.model_validate({k: v for k, v in doc.items() if k in PaymentOut.model_fields})


def _settled(doc: dict[str, Any], response: Response | None = None) -> PaymentOut:
    """The recorded outcome: the payment (2xx), a 402 naming the decline and the payment id, or 409
    `payment_canceled` when the order service gave the order up first."""
    if doc["status"] == "canceled":
        raise _canceled(doc)
    if doc["status"] == "declined":
        code = doc.get("decline_code") or "card_declined"
        details = {"payment_id": doc["_id"], "order_id": doc["order_id"]}
        headers = {REPLAY_HEADER: "true"} if response is not None else None
        raise ApiError(402, code, cards.DECLINE_MESSAGES.get(code, "payment declined"), details, headers)
    if response is not None:
        response.headers[REPLAY_HEADER] = "true"
    return _out(doc)


async def _process(
    db: Database, settings: Settings, http: ServiceClient, doc: dict[str, Any], number: str
) -> dict[str, Any]:
    """Run the claimed charge through the simulator or the provider and record the outcome."""
    if settings.provider_url:
        try:
            order_id, amount, currency = doc["order_id"], doc["amount_cents"], doc["currency"]
            outcome = await provider.charge(http, settings.provider_url, order_id, amount, currency)
        except ApiError:
            await store.unclaim(db, doc["_id"])  # nothing recorded: a retry may charge (provider dedupes)
            raise
    else:
        outcome = cards.simulate(number)
    fields = {
        "status": "succeeded" if outcome.succeeded else "declined",
        "decline_code": outcome.decline_code,
        "provider_charge_id": outcome.provider_charge_id,
    }
    finished = await store.finish(db, doc["_id"], fields)
    if finished is None:  # someone took over a claim we still held: report what they recorded
        finished = await store.get(db, doc["_id"])
    log.info("charge %s for order %s: %s", doc["_id"], doc["order_id"], fields["status"])
    return finished or {**doc, **fields}


async def _await_recorded(
    db: Database, settings: Settings, body: ChargeIn, user: Principal
) -> dict[str, Any] | None:
    """Wait for the first request of this order to finish; None when the caller should process instead."""
    deadline = asyncio.get_running_loop().time() + settings.duplicate_wait_seconds
    while True:
        existing = await store.by_order(db, body.order_id)
        if existing is None:
            return None  # the claim was withdrawn (provider error): try to claim again
        if existing["status"] == "canceled":
            raise _canceled(existing)
        if existing["user_id"] != user.sub:
            raise ApiError(409, "order_id_conflict", "this order id belongs to another payment")
        if existing["amount_cents"] != body.amount_cents or existing["currency"] != body.currency:
            raise ApiError(
                409,
                "amount_mismatch",
                "this order was already charged with a different amount",
                {"payment_id": existing["_id"], "amount_cents": existing["amount_cents"]},
            )
        if existing["status"] != "processing":
            return existing
        if existing["claimed_at"] < now_iso(-settings.stale_after_seconds):
            taken = await store.take_over(db, existing["_id"], existing["claimed_at"])
            if taken is not None:
                return {**taken, "_take_over": True}
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(409, "payment_in_progress", "a charge for this order is still being processed")
        await asyncio.sleep(0.05)


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentOut,
    summary="Charge a card for an order (idempotent per order_id)",
    responses={402: {"description": "card_declined or insufficient_funds"}, 409: {"description": "conflict"}},
)
async def charge(
    body: ChargeIn,
    response: Response,
    user: CurrentUser,
    db: Db,
    settings: AppSettings[Settings],
    http: Http,
) -> PaymentOut:
    month, year = parse_expiry(body.card.expiry)
    for _ in range(3):
        now = clock.now_iso()
        doc: dict[str, Any] = {
            "_id": uuid.uuid4().hex,
            "order_id": body.order_id,
            "user_id": user.sub,
            "status": "processing",
            "amount_cents": body.amount_cents,
            "currency": body.currency,
            "card": {
                "brand": cards.brand(body.card.number),
                "last4": body.card.number[-4:],
                "exp_month": month,
                "exp_year": year,
            },
            "provider": "external" if settings.provider_url else "simulated",
            "created_at": now,
            "claimed_at": now,
        }
        doc["id"] = doc["_id"]
        if await store.claim(db, doc):
            return _settled(await _process(db, settings, http, doc, body.card.number))
        existing = await _await_recorded(db, settings, body, user)
        if existing is not None and existing.pop("_take_over", False):
            return _settled(await _process(db, settings, http, existing, body.card.number))
        if existing is not None:
            return _settled(existing, response)
    raise ApiError(409, "payment_in_progress", "a charge for this order is still being processed")


def _canceled(doc: dict[str, Any]) -> ApiError:
    return ApiError(
        409,
        "payment_canceled",
        "the order service gave this order up before it was charged; nothing was charged",
        {"payment_id": doc["_id"], "order_id": doc["order_id"]},
    )


async def _own_payment(db: Database, payment_id: str, user: Principal) -> dict[str, Any]:
    doc = await store.get(db, payment_id)
    if doc is None or not user.may_see(doc["user_id"]):
        raise ApiError(404, "payment_not_found", "no such payment")
    return doc


@router.get(
    "/payments/{payment_id}",
    response_model=PaymentOut,
    summary="A payment (owner or admin)",
    responses={404: {"description": "payment_not_found"}},
)
async def get_payment(payment_id: str, db: Db, user: CurrentUser) -> PaymentOut:
    return _out(await _own_payment(db, payment_id, user))


@router.get(
    "/payments/by-order/{order_id}",
    response_model=PaymentOut,
    summary="The payment of an order, whatever its status (the order service only)",
    responses={404: {"description": "payment_not_found: nothing was ever charged for this order"}},
)
async def payment_of_order(order_id: str, db: Db, caller: OrderService) -> PaymentOut:
    """How order settles a checkout whose charge answer it lost: `processing`, `succeeded`, `declined`,
    `refunded`, or 404 when payment never recorded a charge for the order."""
    doc = await store.by_order(db, order_id)
    if doc is None:
        raise ApiError(404, "payment_not_found", "no payment for this order")
    return _out(doc)


@router.post(
    "/payments/by-order/{order_id}/cancel",
    response_model=PaymentOut,
    summary="Charge-or-cancel: the order's payment if it happened, else a cancel that fences off any later "
    "charge (the order service only)",
    responses={409: {"description": "payment_in_progress: a charge for the order is being processed now"}},
)
async def cancel_order_payment(
    order_id: str, db: Db, settings: AppSettings[Settings], http: Http, caller: OrderService
) -> PaymentOut:
    """How order settles a checkout it cannot finish with the shopper (its process died, or payment's
    answer was lost and the shopper never retried): the recorded outcome (`succeeded`, `declined`,
    `refunded`) when a charge happened, else `canceled`: recorded under the order id's unique index, so a
    charge request still on its way (a retry, a slow network) finds it and answers 409 `payment_canceled`
    instead of charging. A `processing` claim whose process died (older than STALE_AFTER_SECONDS) is
    canceled with the simulated processor, asked again at the provider in provider mode."""
    if ORDER_ID.fullmatch(order_id) is None:
        raise ApiError(422, "invalid_order_id", "order_id must be 1-64 of A-Z a-z 0-9 _ -")
    if await store.cancel(db, order_id):
        log.info("order %s: payment canceled before any charge", order_id)
    doc = await store.by_order(db, order_id)
    if doc is None:  # a provider error withdrew a claim between the two steps: ask again
        raise ApiError(409, "payment_in_progress", "a charge for this order is still being processed")
    if doc["status"] == "processing":
        if doc["claimed_at"] >= now_iso(-settings.stale_after_seconds):
            raise ApiError(409, "payment_in_progress", "a charge for this order is still being processed")
        if settings.provider_url:
            taken = await store.take_over(db, doc["_id"], doc["claimed_at"])
            if taken is not None:
                return _out(await _process(db, settings, http, taken, ""))  # the provider dedupes by order id
        else:
            doc = await store.cancel_stale(db, doc["_id"], doc["claimed_at"]) or doc
        if doc["status"] == "processing":
            raise ApiError(409, "payment_in_progress", "a charge for this order is still being processed")
    return _out(doc)


@router.post(
    "/payments/{payment_id}/refund",
    response_model=PaymentOut,
    summary="Refund a succeeded payment (order service only; a second refund returns the refunded payment)",
    responses={404: {"description": "payment_not_found"}, 409: {"description": "not_refundable"}},
)
async def refund(payment_id: str, db: Db, caller: OrderService) -> PaymentOut:
    doc = await store.get(db, payment_id)
    if doc is None:
        raise ApiError(404, "payment_not_found", "no such payment")
    refunded = await store.refund(db, payment_id)
    if refunded is not None:
        log.info("refunded %s (order %s)", payment_id, doc["order_id"])
        return _out(refunded)
    current = await store.get(db, payment_id) or doc
    if current["status"] == "refunded":
        return _out(current)
    raise ApiError(409, "not_refundable", f"a {current['status']} payment cannot be refunded")
