"""Settling checkouts that nobody finishes, so that no order holds stock (or a charge) for long.

A checkout is finished by the request that started it, or by its shopper's retry with the same key. Two
cases leave it open: the order process dies in the middle (kill -9, a crash, a node lost), or payment's
answer is lost and the shopper never retries. A background loop in every order process settles those:

1. Every order is listed in `open_checkouts` before it is stored; the loop goes through that short list,
   forgets the orders that are finished, and claims one whose lease (renewed by every checkout step,
   CHECKOUT_LEASE_SECONDS) ran out more than SETTLE_GRACE_SECONDS ago (the grace leaves the shopper's own
   retry the first go), with a conditional update, so one replica wins each order. A failed order whose
   release or refund failed is claimed too.
2. Charge-or-cancel at payment, as the order service (its own token): `POST /payments/by-order/{id}/cancel`
   answers the charge payment recorded for the order, or records `canceled`, after which no charge for the
   order can succeed, however late a request arrives.
3. Charged (`succeeded`): the purchase is finished as the shopper would have seen it: stock (idempotent
   Reserve), shipment, confirmation (sent as the order service), `paid`. Declined: the stock is released and
   the order fails with 402. Canceled (nothing charged) or already refunded: the stock is released and the
   order fails with 503 `checkout_interrupted`, which a retry with the same key turns into a new attempt.
4. A dependency that is down interrupts nothing for good: the order is tried again SETTLE_RETRY_SECONDS later.

So an open checkout is settled at most CHECKOUT_LEASE_SECONDS + SETTLE_GRACE_SECONDS + SETTLE_POLL_SECONDS
after its last step, once payment, product and auth answer. Every step is idempotent per order id, so a
settle racing the checkout it takes over (a process that was slow, not dead) cannot charge or ship twice.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import FastAPI

from services.kit import ApiError, clock
from services.kit.background import repeat
from services.order import checkout, store
from services.order.checkout import Checkout
from services.order.settings import Settings

log = logging.getLogger("order.settle")
Doc = dict[str, Any]


def interrupted() -> ApiError:
    """Why an order the settler gave up failed: nothing was charged, so the same key may try again."""
    return ApiError(
        503,
        "checkout_interrupted",
        "the checkout was interrupted and given up; nothing was charged. Retry with the same Idempotency-Key",
    )


class SettleLater(Exception):
    """The order cannot be settled yet (a charge is still being processed)."""


async def settle(run: Checkout, order: Doc) -> Doc:
    """Finish or give up one claimed order; the order as it is now. Raises ApiError or SettleLater when a
    dependency keeps it from being settled now (it stays claimable)."""
    if order["status"] == "failed":
        return await _finish_undo(run, order)
    neighbours, db = run.neighbours, run.db
    order_id = order["_id"]
    payment_id = order.get("payment_id") if order["status"] == "charged" else None
    if payment_id is None:
        payment = await neighbours.cancel_payment_of_order(order_id)
        status = str(payment["status"])
        if status == "processing":
            raise SettleLater("a charge for the order is still being processed")
        log.warning(
            "settling order %s (%s, nobody finished it): payment %s", order_id, order["status"], status
        )
        if status != "succeeded":
            error = interrupted()
            if status == "declined":
                code = str(payment.get("decline_code") or "card_declined")
                error = ApiError(402, code, "the card was declined")
            await store.record(db, order_id, {}, store.entry("settling", f"payment {status}"))
            with contextlib.suppress(ApiError):  # the order's failure, now recorded (or a takeover's)
                await checkout.fail(run, order, error, None)
            return await store.get_order(db, order_id) or order
        payment_id = str(payment["id"])
        await store.record(
            db,
            order_id,
            {"status": "charged", "payment_id": payment_id},
            store.entry("settling", "payment succeeded"),
            store.entry("charged"),
            when_status=checkout.IN_PROGRESS,
        )
    else:
        log.warning("settling order %s (charged, nobody finished it)", order_id)
        await store.record(db, order_id, {}, store.entry("settling", "charged"))
    return await _complete(run, order)


async def _complete(run: Checkout, order: Doc) -> Doc:
    """A charged order: make sure of the stock, ship, confirm as the order service, record `paid`."""
    neighbours = run.neighbours
    items = [(i["product_id"], i["quantity"]) for i in order["items"]]
    reservation = await run.inventory.reserve(order["_id"], items)  # idempotent: the same reservation
    if reservation.status != "RESERVED":
        raise ApiError(409, "reservation_released", f"order {order['_id']} is charged but its stock is back")
    await checkout.ship(run, neighbours, order, as_order=True)
    current = await store.get_order(run.db, order["_id"]) or order
    total = f"{current['total_cents'] / 100:.2f} {current['currency']}"
    lines = ", ".join(f"{i['quantity']} x {i['name']}" for i in order["items"])
    body = f"Thank you! Order {order['_id'][:8]}: {lines}. Total {total}."
    try:
        await neighbours.notify_user(current, "order_confirmation", "Your order is confirmed", body)
        note = store.entry("confirmation_sent")
    except ApiError as exc:
        note = store.entry("notification_failed", f"{exc.code}: {exc.message}")
    return await checkout.mark_paid(run, order, note)


async def _finish_undo(run: Checkout, order: Doc) -> Doc:
    """A failed order whose release or refund failed: do what is left, then clear `undo_pending`."""
    neighbours = run.neighbours
    done = {h["status"] for h in order["status_history"]}
    notes = []
    if "release_failed" in done and "released" not in done:
        await run.inventory.release(order["_id"])
        notes.append(store.entry("released"))
    if "refund_failed" in done and "refunded" not in done and order.get("payment_id"):
        await neighbours.refund(order["payment_id"])
        notes.append(store.entry("refunded"))
    log.warning("order %s: finished its undo (%s)", order["_id"], ", ".join(n["status"] for n in notes))
    fields = {"undo_pending": False}
    return await store.record(run.db, order["_id"], fields, *notes, when_status=["failed"]) or order


def _needs_settling(order: Doc) -> bool:
    return order["status"] in checkout.IN_PROGRESS or bool(order.get("undo_pending"))


async def settle_due(app: FastAPI, limit: int = 100) -> int:
    """Settle the open checkouts whose lease ran out more than the grace ago (at most `limit` looked at);
    forget those that are finished. How many were tried."""
    run = Checkout.of_app(app)
    settings, db = run.settings, run.db
    cutoff = clock.now_iso(-settings.settle_grace_seconds)
    tried = 0
    for order_id in await store.open_order_ids(db, limit):
        order = await store.get_order(db, order_id)
        if order is None:  # the entry is written first; its order was never inserted (or not yet)
            if await _older_than(db, order_id, settings.checkout_lease_seconds):
                await store.forget_open(db, order_id)
            continue
        if not _needs_settling(order):
            await store.forget_open(db, order_id)
            continue
        if order["lease_until"] >= cutoff:
            continue
        claimed = await store.claim_lease(
            db, order_id, order["lease_until"], clock.now_iso(settings.checkout_lease_seconds)
        )
        if claimed is None or not _needs_settling(claimed):
            continue  # a retry or another replica took it first
        tried += 1
        try:
            settled = await settle(run, claimed)
        except (ApiError, SettleLater) as exc:
            reason = exc.message if isinstance(exc, ApiError) else str(exc)
            log.warning("order %s not settled yet (%s); trying again later", order_id, reason)
            # Due again SETTLE_RETRY_SECONDS from now (the claim condition subtracts the grace).
            retry = clock.now_iso(settings.settle_retry_seconds - settings.settle_grace_seconds)
            await store.record(db, order_id, {"lease_until": retry})
            continue
        if not _needs_settling(settled):
            await store.forget_open(db, order_id)
    return tried


async def _older_than(db: Any, order_id: str, seconds: float) -> bool:
    entry = await store.open_checkouts(db).find_one({"_id": order_id})
    return entry is None or str(entry["since"]) < clock.now_iso(-seconds)


async def run(app: FastAPI) -> None:
    """The background loop: settle what is due every SETTLE_POLL_SECONDS until cancelled."""
    settings: Settings = app.state.settings
    await repeat(
        lambda: settle_due(app), every_seconds=settings.settle_poll_seconds, what="settling round", log=log
    )
