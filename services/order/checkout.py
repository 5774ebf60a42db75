"""The idempotent checkout: persist the order first (unique user + Idempotency-Key), then
reserve -> quote -> charge -> ship -> notify -> paid. Every step is idempotent per order id, so a
duplicate waits for the first request and a retry after a crash can safely run the steps again.

The key names one purchase: a retry with it never buys twice, and after a dependency failure that was
fully undone (502/503/504: stock released, any charge refunded) it tries again as a new attempt. When
payment's answer is lost (timeout, 5xx from the path to it), the charge may or may not have happened: the
order stays open with its reservation (`payment_unknown`) until a retry with the same key resumes it, and
payment, idempotent per order id, then answers the recorded outcome instead of charging again."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request
from starlette.datastructures import State

from services.contracts import CheckoutIn
from services.kit import ApiError, clock
from services.kit.db import Database
from services.kit.deps import app_state
from services.kit.jwt import Principal
from services.order import store, tracking
from services.order.clients import Neighbours, error_of
from services.order.inventory_client import InventoryClient
from services.order.settings import Settings

log = logging.getLogger("order.checkout")
Doc = dict[str, Any]
REFUNDABLE = ("paid", "shipped", "delivered")
SUCCEEDED = (*REFUNDABLE, "refunded")  # a purchase happened (an admin may have refunded it since)
TERMINAL = (*SUCCEEDED, "failed")
IN_PROGRESS = ["pending", "reserved", "charged"]
UNDO_FAILED = ("release_failed", "refund_failed")
REPLAYED = {"Idempotent-Replayed": "true"}


@dataclass(frozen=True)
class Checkout:
    """What a checkout works with: order's database and settings, its clients of the neighbours (with
    order's own identity) and of product's gRPC Inventory. Route handlers get one per request
    (`CheckoutDep`); code without a request (a startup or background job) builds one with `of_app`."""

    db: Database
    settings: Settings
    neighbours: Neighbours
    inventory: InventoryClient

    @classmethod
    def of_app(cls, app: FastAPI) -> Checkout:
        return cls.of_state(app.state)

    @classmethod
    def of_state(cls, state: State) -> Checkout:
        return cls(state.db, state.settings, Neighbours.of_state(state), state.inventory)


async def checkout_for_request(request: Request) -> Checkout:
    return Checkout.of_state(app_state(request))


CheckoutDep = Annotated[Checkout, Depends(checkout_for_request)]


def _body_hash(salt: str, body: CheckoutIn) -> str:
    """Salted, so the stored hash does not reveal the card number."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{salt}:{canonical}".encode()).hexdigest()


def _cart_signature(items: list[Doc]) -> str:
    return ",".join(
        f"{i['product_id']}:{i['quantity']}" for i in sorted(items, key=lambda i: i["product_id"])
    )


def _failure_error(order: Doc, headers: dict[str, str] | None = None) -> ApiError:
    failure = order["failure"]
    details = {"order_id": order["_id"], "reason": order.get("failure_reason")}
    return ApiError(failure["status"], failure["code"], failure["message"], details, headers)


async def place_order(run: Checkout, user: Principal, key: str, body: CheckoutIn) -> tuple[Doc, bool]:
    """The order for this key: (order, replayed). Raises the order's failure as an ApiError."""
    db = run.db
    cart = await store.get_cart(db, user.sub)
    existing = await store.by_key(db, user.sub, key)
    if existing is not None and _retryable(existing):
        _check_same_checkout(existing, body, cart)
        if await store.retire_key(db, existing["_id"], key):
            log.info(
                "order %s failed (%s): key %s tries again", existing["_id"], existing["failure_reason"], key
            )
        existing = await store.by_key(db, user.sub, key)  # None, or a concurrent retry's new attempt
    if existing is None:
        if not cart["items"]:
            raise ApiError(409, "cart_empty", "the cart is empty")
        order = await _new_order(run, user, key, cart, body)
        await store.track_open(
            db, order["_id"]
        )  # first: an order is never open without the settler seeing it
        if await store.insert_order(db, order):
            log.info("order %s created for user %s (key %s)", order["_id"], user.sub, key)
            return await _run(run, order, body), False
        existing = await store.by_key(db, user.sub, key)
        if existing is None:
            raise ApiError(409, "conflict", "the order changed meanwhile; try again")
    return await _replay(run, existing, body, cart), True


async def _new_order(run: Checkout, user: Principal, key: str, cart: Doc, body: CheckoutIn) -> Doc:
    settings, neighbours = run.settings, run.neighbours
    products = await asyncio.gather(*(neighbours.product(i["product_id"]) for i in cart["items"]))
    items, weight = [], 0
    for item, product in zip(cart["items"], products, strict=True):
        price = int(product["price_cents"])  # today's price, not the one in the cart
        items.append(
            {
                "product_id": item["product_id"],
                "name": str(product["name"]),
                "price_cents": price,
                "quantity": item["quantity"],
                "line_total_cents": price * item["quantity"],
            }
        )
        weight += int(product.get("weight_grams") or settings.default_weight_grams) * item["quantity"]
    currencies = {str(p.get("currency", "EUR")) for p in products}
    if len(currencies) > 1:
        raise ApiError(409, "mixed_currency", "the cart mixes currencies")
    subtotal = sum(i["line_total_cents"] for i in items)
    salt, now = secrets.token_hex(16), clock.now_iso()
    order_id = uuid.uuid4().hex
    return {
        "_id": order_id,
        "id": order_id,
        "user_id": user.sub,
        "user_email": user.email,  # for notifications order sends later as itself (shipment progress)
        "idempotency_key": key,
        "body_salt": salt,
        "body_hash": _body_hash(salt, body),
        "cart_signature": _cart_signature(cart["items"]),
        "status": "pending",
        "status_history": [store.entry("pending")],
        "items": items,
        "currency": currencies.pop(),
        "subtotal_cents": subtotal,
        "shipping_cents": 0,
        "total_cents": subtotal,
        "weight_grams": weight,
        "shipping_address": body.shipping_address.model_dump(),
        "payment_id": None,
        "shipment_id": None,
        "tracking_number": None,
        "failure": None,
        "created_at": now,
        "updated_at": now,
        "lease_until": clock.now_iso(settings.checkout_lease_seconds),
    }


def _retryable(order: Doc) -> bool:
    """A failed attempt the same key may try again: a dependency failure, with everything undone."""
    if order["status"] != "failed" or order["failure"]["status"] not in (502, 503, 504):
        return False
    undone = {h["status"] for h in order["status_history"]}
    return not undone & set(UNDO_FAILED)


def _check_same_checkout(order: Doc, body: CheckoutIn, cart: Doc) -> None:
    if _body_hash(order["body_salt"], body) != order["body_hash"] or (
        order["status"] not in SUCCEEDED
        and cart["items"]
        and _cart_signature(cart["items"]) != order["cart_signature"]
    ):
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different checkout; use a new key",
            {"order_id": order["_id"]},
        )


async def _replay(run: Checkout, order: Doc, body: CheckoutIn, cart: Doc) -> Doc:
    """The same key again: the same order, once the first request has finished with it."""
    settings = run.settings
    _check_same_checkout(order, body, cart)
    deadline = asyncio.get_running_loop().time() + settings.checkout_wait_seconds
    while True:
        current = await store.get_order(run.db, order["_id"]) or order
        if current["status"] == "failed":
            raise _failure_error(current, REPLAYED)
        if current["status"] in SUCCEEDED:
            return current
        if current["lease_until"] < clock.now_iso():
            taken = await store.take_over(
                run.db,
                current["_id"],
                current["lease_until"],
                clock.now_iso(settings.checkout_lease_seconds),
            )
            if taken is not None:
                log.warning("resuming checkout of order %s (lease ran out)", taken["_id"])
                await store.record(run.db, taken["_id"], {}, store.entry("resumed"))
                return await _run(run, taken, body)
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(
                409, "checkout_in_progress", "this checkout is still running", {"order_id": order["_id"]}
            )
        await asyncio.sleep(0.05)


async def _run(run: Checkout, order: Doc, body: CheckoutIn) -> Doc:
    db = run.db
    neighbours = run.neighbours
    order_id = order["_id"]
    address = body.shipping_address.model_dump()
    payment_id: str | None = order.get("payment_id")
    try:
        await _reserve(run, order)
        await store.record(db, order_id, {"status": "reserved", **_lease(run)}, store.entry("reserved"))

        quote = await neighbours.quote(address, order["weight_grams"])
        shipping = int(quote["amount_cents"])
        total = order["subtotal_cents"] + shipping
        await store.record(db, order_id, {"shipping_cents": shipping, "total_cents": total, **_lease(run)})

        card = {"number": body.card.number, "expiry": body.card.expiry, "cvc": body.card.cvc}
        charge = {"order_id": order_id, "amount_cents": total, "currency": order["currency"], "card": card}
        payment = await _charge(neighbours, charge)
        payment_id = str(payment["id"])
        await store.record(
            db,
            order_id,
            {"status": "charged", "payment_id": payment_id, **_lease(run)},
            store.entry("charged"),
        )

        await ship(run, neighbours, order)
    except OutcomeUnknown as unknown:
        return await _leave_open(run, order, unknown.error)
    except ApiError as exc:
        return await fail(run, order, exc, payment_id)
    except (KeyError, TypeError, ValueError) as exc:  # a neighbour answered 2xx with an odd body
        error = ApiError(502, "bad_gateway", f"unexpected answer from a dependency ({type(exc).__name__})")
        return await fail(run, order, error, payment_id)

    note = await _notify_confirmation(neighbours, order, total)
    return await mark_paid(run, order, note)


def _lease(run: Checkout) -> Doc:
    """A fresh lease, written with every step: a checkout is taken over (by its shopper's retry or by the
    settler, services/order/settle.py) only when no step happened for CHECKOUT_LEASE_SECONDS."""
    return {"lease_until": clock.now_iso(run.settings.checkout_lease_seconds)}


async def ship(run: Checkout, neighbours: Neighbours, order: Doc, as_order: bool = False) -> None:
    """Create the order's shipment (idempotent per order id at shipping) and record it; `as_order`: with
    order's own token for the order's shopper (the settler has no shopper's token)."""
    for_user = order["user_id"] if as_order else None
    address, weight = order["shipping_address"], order["weight_grams"]
    shipment = await neighbours.create_shipment(order["_id"], address, weight, for_user)
    shipped = {
        "shipment_id": str(shipment["id"]),
        "tracking_number": str(shipment["tracking_number"]),
        "track_at": tracking.next_look(run.settings, shipment.get("next_update_at")),
    }
    await store.record(run.db, order["_id"], {**shipped, **_lease(run)}, store.entry("shipment_created"))


async def mark_paid(run: Checkout, order: Doc, note: Doc) -> Doc:
    """Record a charged, shipped checkout `paid` (once) and take its items out of the cart; the order as
    it is now. Raises the recorded failure when someone else (a takeover) finished it as failed."""
    db = run.db
    order_id = order["_id"]
    paid = await store.record(
        db, order_id, {"status": "paid"}, note, store.entry("paid"), when_status=IN_PROGRESS
    )
    if paid is None:  # finished by someone else meanwhile (a takeover): report that outcome
        paid = await store.get_order(db, order_id) or order
        if paid["status"] == "failed":
            raise _failure_error(paid)
        return paid
    ordered = {i["product_id"]: i["quantity"] for i in order["items"]}
    try:
        await store.remove_from_cart(db, order["user_id"], ordered)
    except ApiError as exc:  # the order is paid; a cart that keeps its items is no reason to fail it
        log.warning("order %s: cart not emptied: %s", order_id, exc.message)
    log.info("order %s paid (payment %s)", order_id, paid.get("payment_id"))
    return paid


async def _reserve(run: Checkout, order: Doc) -> None:
    """Reserve the order's items (idempotent per order id). Raises 409 `insufficient_stock`, or 409
    `reservation_released` when the order's units were already given back (the settler gave the order up
    while this request was still on its way)."""
    items = [(i["product_id"], i["quantity"]) for i in order["items"]]
    try:
        reservation = await run.inventory.reserve(order["_id"], items)
    except ApiError as exc:
        if exc.code == "out_of_stock":  # the shop's code for it, as on the cart
            raise ApiError(409, "insufficient_stock", exc.message, exc.details) from exc
        raise
    if getattr(reservation, "status", "RESERVED") == "RELEASED":
        raise ApiError(409, "reservation_released", "this order's stock was given back meanwhile")


class OutcomeUnknown(Exception):
    """Payment's answer was lost: the charge may or may not have happened."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _never_arrived(error: ApiError) -> bool:
    """The request never reached payment (no connection), so nothing can have been charged."""
    return isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


async def _charge(neighbours: Neighbours, charge: Doc) -> Doc:
    """Charge once; when the outcome is unknown (timeout, 5xx other than a simulated failure) ask again:
    payment is idempotent per order id, so the repeat returns the recorded outcome or charges once.
    Raises the error when nothing was charged, OutcomeUnknown when that cannot be known. An attempt whose
    answer was lost may have charged even if the next one never arrives (payment killed right after
    recording the charge): then the outcome stays unknown."""
    maybe_charged = False  # an earlier attempt reached payment and its answer was lost
    for attempt in (1, 2):
        try:
            response = await neighbours.charge(charge)
        except ApiError as exc:
            maybe_charged = maybe_charged or not _never_arrived(exc)
            if attempt == 1:
                continue
            raise OutcomeUnknown(exc) if maybe_charged else exc from exc
        if response.is_success:  # charged; an odd body would hide the payment to refund
            try:
                data: Doc = response.json()
                str(data["id"])
            except (ValueError, KeyError, TypeError):
                raise OutcomeUnknown(
                    ApiError(502, "payment_error", "payment sent an unexpected body")
                ) from None
            return data
        error = error_of(response, "payment")
        if error.code == "payment_in_progress":  # an earlier request of ours is still being charged
            raise OutcomeUnknown(ApiError(503, error.code, error.message))
        if response.status_code < 500 or (error.code == "simulated_failure" and not maybe_charged):
            raise error  # a decline, bad input, or a fault injected before anything happened
        if attempt == 2:
            raise OutcomeUnknown(error)
        maybe_charged = True  # a 5xx from the path: payment may have charged before it
    raise AssertionError("not reached")


async def _leave_open(run: Checkout, order: Doc, error: ApiError) -> Doc:
    """Keep the order and its reservation, with its lease run out, so that a retry with the same key
    resumes it at once; payment then answers the recorded outcome. Raises the error for the shopper."""
    reason = f"{error.code}: {error.message}"
    await store.record(
        run.db,
        order["_id"],
        {"lease_until": clock.now_iso()},
        store.entry("payment_unknown", reason),
        when_status=IN_PROGRESS,
    )
    log.warning("order %s: outcome of the charge unknown (%s); left for a retry", order["_id"], reason)
    raise ApiError(
        error.status,
        "payment_outcome_unknown",
        "payment did not confirm the charge; retry with the same Idempotency-Key (it never charges twice)",
        {"order_id": order["_id"], "reason": reason},
    )


async def _notify_confirmation(neighbours: Neighbours, order: Doc, total: int) -> Doc:
    """Send the confirmation; a failure is recorded but never fails a paid order."""
    lines = ", ".join(f"{i['quantity']} x {i['name']}" for i in order["items"])
    body = f"Thank you! Order {order['_id'][:8]}: {lines}. Total {total / 100:.2f} {order['currency']}."
    try:
        await neighbours.notify("order_confirmation", "Your order is confirmed", body, order["_id"])
    except ApiError as exc:
        log.warning("confirmation for order %s not sent: %s", order["_id"], exc.code)
        return store.entry("notification_failed", f"{exc.code}: {exc.message}")
    return store.entry("confirmation_sent")


async def _undo(name: str, failed: str, action: Callable[[], Awaitable[Any]]) -> Doc:
    """Release or refund, both idempotent: tried up to 3 times; the outcome goes in the history."""
    for attempt in range(3):
        try:
            await action()
            return store.entry(name)
        except ApiError as exc:
            if attempt == 2:
                log.error("%s FAILED: %s %s", name, exc.code, exc.message)
                return store.entry(failed, f"{exc.code}: {exc.message}")
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("not reached")


async def fail(run: Checkout, order: Doc, error: ApiError, payment_id: str | None) -> Doc:
    """Give the stock back, refund a charge, record the order `failed` with the reason, raise. When a
    takeover (the shopper's retry or the settler) has finished the order meanwhile, its outcome stands:
    nothing is given back or refunded, a paid order is returned as it is, a failed one raises its failure."""
    order_id = order["_id"]
    neighbours = run.neighbours
    current = await store.get_order(run.db, order_id)
    if current is not None and current["status"] not in IN_PROGRESS:
        log.warning("order %s: not failed for %s: a takeover finished it", order_id, error.code)
        if current["status"] == "failed":
            raise _failure_error(current)
        return current
    notes = [await _undo("released", "release_failed", lambda: run.inventory.release(order_id))]
    if payment_id:
        notes.append(await _undo("refunded", "refund_failed", lambda: neighbours.refund(payment_id)))
    status = error.status if error.status in (402, 409, 502, 503, 504) else 409
    reason = f"{error.code}: {error.message}"
    failure = {"status": status, "code": error.code, "message": error.message}
    fields: Doc = {"status": "failed", "failure": failure, "failure_reason": reason}
    if any(note["status"] in UNDO_FAILED for note in notes):  # the settler tries again until it is done
        fields.update(undo_pending=True, lease_until=clock.now_iso())
    failed = await store.record(
        run.db, order_id, fields, *notes, store.entry("failed", reason), when_status=IN_PROGRESS
    )
    log.warning("order %s failed: %s", order_id, reason)
    raise _failure_error(failed or {**order, **fields})
