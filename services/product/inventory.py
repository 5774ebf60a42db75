"""Inventory rules on MongoDB: stock levels, all-or-nothing reservations, exactly-once release.

Stock is the number of units available now: a reservation takes its units out of `products.stock`
with a guarded `$inc` (never below zero), a release puts them back. One document per order id in
`reservations` (`_id` = order id, so the first writer wins) records the outcome:
PENDING (being reserved) -> RESERVED -> RELEASED, or PENDING -> FAILED (kept, so a repeat answers the same).

A PENDING claim has an `owner` and a `lease_until`, and lists the units taken so far (`taken`, written
right after each decrement). If its process dies, the next call for that order after the lease
takes the claim over, returns the listed units and starts again: an order is never stuck, and a
crash can cost at most the one item being taken at that instant (never an oversell).
Only single-document atomic operations are used, so it works on any MongoDB (and on mongomock).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.kit.clock import now_iso
from services.kit.db import Database

log = logging.getLogger("product.inventory")

PENDING, RESERVED, RELEASED, FAILED = "PENDING", "RESERVED", "RELEASED", "FAILED"
NOT_FOUND = "NOT_FOUND"  # Release answer when nothing was reserved for the order

MAX_ID_LENGTH = 128
MAX_ITEMS = 100
MAX_QUANTITY = 10_000
_POLL_SECONDS = 0.02
LEASE_SECONDS = 30.0  # a PENDING claim older than this belongs to a dead (or hung) writer
# Product ids are catalog slugs; order ids any printable ASCII without spaces (they end up in
# gRPC metadata and logs).
_ID_PATTERNS = {
    "product_id": re.compile(r"[a-z0-9][a-z0-9-]*"),
    "order_id": re.compile(r"[\x21-\x7e]+"),
}


class InventoryError(Exception):
    """Why a call failed; `code` is one of invalid_argument, not_found, out_of_stock, busy, unavailable."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def as_document(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: str
    items: tuple[tuple[str, int], ...]


def _check_id(kind: str, value: str) -> None:
    if not value or not value.strip():
        raise InventoryError("invalid_argument", f"{kind} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InventoryError("invalid_argument", f"{kind} is longer than {MAX_ID_LENGTH} characters")
    if not _ID_PATTERNS[kind].fullmatch(value):
        shape = "a product slug (a-z, 0-9, -)" if kind == "product_id" else "printable ASCII without spaces"
        raise InventoryError("invalid_argument", f"{kind} {value!r} is not {shape}")


def normalize_items(items: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Validate the requested items; the same product twice is merged into one line."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        _check_id("product_id", product_id)
        if quantity < 1 or quantity > MAX_QUANTITY:
            raise InventoryError(
                "invalid_argument",
                f"quantity for {product_id} must be between 1 and {MAX_QUANTITY}",
                {"product_id": product_id, "quantity": quantity},
            )
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not merged:
        raise InventoryError("invalid_argument", "a reservation needs at least one item")
    if len(merged) > MAX_ITEMS:
        raise InventoryError("invalid_argument", f"at most {MAX_ITEMS} different products per reservation")
    return tuple(sorted(merged.items()))


async def get_stock(db: Database, product_ids: list[str]) -> list[tuple[str, int]]:
    """Available units per product, in the order asked; no ids means every product."""
    if not product_ids:
        docs = await db.products.find({}, {"stock": 1}).sort("_id", 1).to_list(length=None)
        return [(doc["_id"], int(doc["stock"])) for doc in docs]
    for product_id in product_ids:
        _check_id("product_id", product_id)
    wanted = list(dict.fromkeys(product_ids))
    if len(wanted) > MAX_ITEMS:
        raise InventoryError("invalid_argument", f"at most {MAX_ITEMS} products per request")
    docs = await db.products.find({"_id": {"$in": wanted}}, {"stock": 1}).to_list(length=None)
    stock = {doc["_id"]: int(doc["stock"]) for doc in docs}
    missing = [product_id for product_id in wanted if product_id not in stock]
    if missing:
        raise InventoryError("not_found", f"unknown product: {', '.join(missing)}", {"product_ids": missing})
    return [(product_id, stock[product_id]) for product_id in wanted]


async def reserve(
    db: Database, order_id: str, items: Iterable[tuple[str, int]], wait_seconds: float
) -> Reservation:
    """Take all items out of stock for `order_id`, or none. A repeat (also a concurrent one)
    returns the first attempt's outcome: the reservation, or the same error."""
    _check_id("order_id", order_id)
    wanted = normalize_items(items)
    deadline = time.monotonic() + wait_seconds
    while True:
        owner = uuid.uuid4().hex
        claim = {
            "_id": order_id,
            "status": PENDING,
            "owner": owner,
            "lease_until": time.time() + LEASE_SECONDS,
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in wanted],
            "taken": [],
            "created_at": now_iso(),
        }
        try:
            await db.reservations.insert_one(claim)
        except DuplicateKeyError:
            existing = await _settled(db, order_id, deadline)
            if existing is None:
                continue  # the first writer gave up or died: try again ourselves
            return _outcome(existing, wanted)
        reservation = await _take(db, order_id, owner, wanted)
        if reservation is not None:
            return reservation
        # Our lease ran out and another call took the claim over: start again.


async def _take(
    db: Database, order_id: str, owner: str, wanted: tuple[tuple[str, int], ...]
) -> Reservation | None:
    """Decrement each item for a claim we own; None if the claim was taken over meanwhile."""
    in_hand: tuple[str, int] | None = None  # decremented, not yet listed in `taken`
    try:
        for product_id, quantity in wanted:
            result = await db.products.update_one(
                {"_id": product_id, "stock": {"$gte": quantity}}, {"$inc": {"stock": -quantity}}
            )
            if result.matched_count == 0:
                error = await _why_not(db, product_id, quantity)
                await _return_taken(db, order_id, owner)
                await db.reservations.update_one(
                    {"_id": order_id, "owner": owner, "status": PENDING},
                    {"$set": {"status": FAILED, "error": error.as_document(), "updated_at": now_iso()}},
                )
                raise error
            in_hand = (product_id, quantity)
            entry = {"product_id": product_id, "quantity": quantity}
            listed = await db.reservations.update_one(
                {"_id": order_id, "owner": owner}, {"$push": {"taken": entry}}
            )
            if listed.matched_count == 0:
                return None  # taken over; `finally` returns the units in hand
            in_hand = None
        done = await db.reservations.update_one(
            {"_id": order_id, "owner": owner, "status": PENDING},
            {"$set": {"status": RESERVED, "updated_at": now_iso()}, "$unset": {"lease_until": ""}},
        )
        return Reservation(order_id, RESERVED, wanted) if done.matched_count == 1 else None
    except InventoryError:
        raise
    except BaseException:
        # Unexpected (database down, cancelled): undo and drop the claim so a retry can start over.
        log.exception("reservation %s failed; rolling back", order_id)
        returned = await _return_taken(db, order_id, owner)
        if in_hand is not None and in_hand[0] in returned:
            # Listing it failed with its answer lost, yet the server had listed it: it went back above.
            in_hand = None
        await db.reservations.delete_one({"_id": order_id, "owner": owner, "status": PENDING})
        raise
    finally:
        if in_hand is not None:
            await _give_back(db, [in_hand], order_id)


async def _return_taken(db: Database, order_id: str, owner: str) -> set[str]:
    """Give back the units a claim we own lists as taken. Each is first pulled from the list, then
    returned, so a crash or a second caller can never return the same units twice. Returns the ids
    of the products given back by this call."""
    returned: set[str] = set()
    doc = await db.reservations.find_one({"_id": order_id, "owner": owner}, {"taken": 1})
    for item in (doc or {}).get("taken", []):
        product_id, quantity = item["product_id"], int(item["quantity"])
        pulled = await db.reservations.update_one(
            {"_id": order_id, "owner": owner, "taken.product_id": product_id},
            {"$pull": {"taken": {"product_id": product_id}}},
        )
        if pulled.matched_count == 1:
            await _give_back(db, [(product_id, quantity)], order_id)
            returned.add(product_id)
    return returned


async def _why_not(db: Database, product_id: str, quantity: int) -> InventoryError:
    doc = await db.products.find_one({"_id": product_id}, {"stock": 1})
    if doc is None:
        return InventoryError("not_found", f"unknown product: {product_id}", {"product_id": product_id})
    available = int(doc["stock"])
    return InventoryError(
        "out_of_stock",
        f"not enough stock for {product_id}: {quantity} requested, {available} available",
        {"product_id": product_id, "requested": quantity, "available": available},
    )


async def _give_back(db: Database, items: list[tuple[str, int]], order_id: str) -> None:
    """Return units to stock; `items` is emptied as they go back, so nothing is returned twice."""
    while items:
        product_id, quantity = items[-1]
        try:
            await db.products.update_one({"_id": product_id}, {"$inc": {"stock": quantity}})
        except Exception:
            # Never silent: an operator can put these units back by hand from this line.
            log.error(
                "could not return %d x %s for order %s",
                quantity,
                product_id,
                order_id,
                extra={"fields": {"order_id": order_id, "product_id": product_id, "quantity": quantity}},
            )
            raise
        items.pop()


async def _settled(db: Database, order_id: str, deadline: float) -> dict[str, Any] | None:
    """The order's reservation once it is no longer PENDING (None if the claim disappeared)."""
    while True:
        doc: dict[str, Any] | None = await db.reservations.find_one({"_id": order_id})
        if doc is None or doc["status"] != PENDING:
            return doc
        if doc.get("lease_until", float("inf")) < time.time():
            await _recover(db, doc)
            continue
        if time.monotonic() >= deadline:
            raise InventoryError(
                "busy", f"a reservation for order {order_id} is still in progress", {"order_id": order_id}
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _recover(db: Database, stale: dict[str, Any]) -> None:
    """Take over a claim whose lease ran out: return what it took and delete it."""
    me = uuid.uuid4().hex
    won = await db.reservations.find_one_and_update(
        {"_id": stale["_id"], "status": PENDING, "owner": stale.get("owner")},
        {"$set": {"owner": me, "lease_until": time.time() + LEASE_SECONDS}},
    )
    if won is None:
        return  # settled or recovered by someone else meanwhile
    log.warning("taking over the stale reservation of order %s (owner %s)", stale["_id"], stale.get("owner"))
    await _return_taken(db, stale["_id"], me)
    await db.reservations.delete_one({"_id": stale["_id"], "owner": me, "status": PENDING})


def _outcome(doc: dict[str, Any], asked: tuple[tuple[str, int], ...]) -> Reservation:
    if doc["status"] == FAILED:
        error = doc.get("error") or {}
        code, message = error.get("code", "out_of_stock"), error.get("message", "reservation failed")
        raise InventoryError(code, message, error.get("details"))
    items = tuple((item["product_id"], int(item["quantity"])) for item in doc["items"])
    if items != asked:
        log.warning("order %s reserved again with other items; answering the first reservation", doc["_id"])
    return Reservation(doc["_id"], doc["status"], items)


async def release(db: Database, order_id: str, wait_seconds: float) -> str:
    """Put an order's units back exactly once. RELEASED, or NOT_FOUND when nothing was reserved."""
    _check_id("order_id", order_id)
    deadline = time.monotonic() + wait_seconds
    while True:
        before: dict[str, Any] | None = await db.reservations.find_one_and_update(
            {"_id": order_id, "status": RESERVED},
            {"$set": {"status": RELEASED, "released_at": now_iso()}},
        )
        if before is not None:
            items = [(item["product_id"], int(item["quantity"])) for item in before["items"]]
            await _give_back(db, items, order_id)
            return RELEASED
        doc = await _settled(db, order_id, deadline)
        if doc is None or doc["status"] == FAILED:
            return NOT_FOUND
        if doc["status"] == RELEASED:
            return RELEASED
        # RESERVED now (it was PENDING a moment ago): loop to release it.
