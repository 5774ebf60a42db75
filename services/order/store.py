"""MongoDB access for carts (one document per user, optimistic version) and orders."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.kit import ApiError
from services.kit.clock import now_iso
from services.kit.db import Database

Doc = dict[str, Any]


def carts(db: Database) -> Any:
    return db["carts"]


def orders(db: Database) -> Any:
    return db["orders"]


async def ensure_indexes(db: Database) -> None:
    await orders(db).create_index([("user_id", 1), ("idempotency_key", 1)], unique=True)
    await orders(db).create_index([("user_id", 1), ("created_at", -1)])
    await orders(db).create_index([("track_at", 1)], sparse=True)


# --- carts ---------------------------------------------------------------------------------------


async def get_cart(db: Database, user_id: str) -> Doc:
    doc: Doc | None = await carts(db).find_one({"_id": user_id})
    return doc or {"_id": user_id, "items": [], "version": 0}


async def update_cart(db: Database, user_id: str, change: Callable[[list[Doc]], list[Doc]]) -> Doc:
    """Apply `change` to the cart's items with an optimistic version check (retried on races)."""
    for _ in range(10):
        cart = await get_cart(db, user_id)
        items = change([dict(item) for item in cart["items"]])
        fields = {"items": items, "updated_at": now_iso()}
        if cart["version"] == 0 and "updated_at" not in cart:
            try:
                await carts(db).insert_one({"_id": user_id, "version": 1, **fields})
                return {"_id": user_id, "version": 1, **fields}
            except DuplicateKeyError:
                continue
        updated: Doc | None = await carts(db).find_one_and_update(
            {"_id": user_id, "version": cart["version"]},
            {"$set": fields, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            return updated
    raise ApiError(409, "conflict", "the cart changed meanwhile; try again")


async def remove_from_cart(db: Database, user_id: str, ordered: dict[str, int]) -> None:
    """After a paid checkout: take the ordered quantities out of the cart (later additions stay)."""

    def change(items: list[Doc]) -> list[Doc]:
        left = []
        for item in items:
            item["quantity"] -= ordered.get(item["product_id"], 0)
            if item["quantity"] > 0:
                left.append(item)
        return left

    await update_cart(db, user_id, change)


# --- orders --------------------------------------------------------------------------------------


async def insert_order(db: Database, doc: Doc) -> bool:
    """False when this user already has an order with this idempotency key."""
    try:
        await orders(db).insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def by_key(db: Database, user_id: str, key: str) -> Doc | None:
    doc: Doc | None = await orders(db).find_one({"user_id": user_id, "idempotency_key": key})
    return doc


async def get_order(db: Database, order_id: str) -> Doc | None:
    doc: Doc | None = await orders(db).find_one({"_id": order_id})
    return doc


async def list_orders(db: Database, user_id: str, limit: int) -> list[Doc]:
    cursor = orders(db).find({"user_id": user_id}).sort([("created_at", -1), ("_id", -1)]).limit(limit)
    docs: list[Doc] = await cursor.to_list(length=None)
    return docs


async def record(
    db: Database, order_id: str, fields: Doc, *history: Doc, when_status: list[str] | None = None
) -> Doc | None:
    """Set fields and append status_history entries; with `when_status`, only from those statuses."""
    query: Doc = {"_id": order_id}
    if when_status is not None:
        query["status"] = {"$in": when_status}
    update: Doc = {"$set": {**fields, "updated_at": now_iso()}}
    if history:
        update["$push"] = {"status_history": {"$each": list(history)}}
    doc: Doc | None = await orders(db).find_one_and_update(
        query, update, return_document=ReturnDocument.AFTER
    )
    return doc


async def claim_due(db: Database, statuses: list[str], now: str, lease: str) -> Doc | None:
    """One order in `statuses` whose `track_at` has come, with `track_at` moved to `lease` (only one caller
    wins it); None when none is due."""
    doc: Doc | None = await orders(db).find_one_and_update(
        {"status": {"$in": statuses}, "track_at": {"$ne": None, "$lte": now}},
        {"$set": {"track_at": lease}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def take_over(db: Database, order_id: str, lease_until: str, new_lease: str) -> Doc | None:
    """Claim a checkout whose lease ran out (its process died); only one caller wins."""
    doc: Doc | None = await orders(db).find_one_and_update(
        {"_id": order_id, "lease_until": lease_until, "status": {"$in": ["pending", "reserved", "charged"]}},
        {"$set": {"lease_until": new_lease}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


# --- open checkouts: what the settler (services/order/settle.py) looks at ------------------------


def open_checkouts(db: Database) -> Any:
    """One document per order that may still need settling (`_id` = order id), written before the order
    itself, removed by the settler once the order is finished. The settler reads this small collection
    instead of searching all orders: most servers would use an index for that search, but FerretDB scans
    the whole collection for anything but an `_id` lookup (docs/ferretdb.md)."""
    return db["open_checkouts"]


async def track_open(db: Database, order_id: str) -> None:
    with contextlib.suppress(DuplicateKeyError):  # already listed
        await open_checkouts(db).insert_one({"_id": order_id, "since": now_iso()})


async def open_order_ids(db: Database, limit: int) -> list[str]:
    docs = await open_checkouts(db).find({}).limit(limit).to_list(length=None)
    return [str(d["_id"]) for d in docs]


async def forget_open(db: Database, order_id: str) -> None:
    await open_checkouts(db).delete_one({"_id": order_id})


async def claim_lease(db: Database, order_id: str, lease_until: str, new_lease: str) -> Doc | None:
    """Take over an order whose lease (`lease_until`, as read) ran out: open, or failed with an undo
    still to do; only one caller (replica) wins it."""
    doc: Doc | None = await orders(db).find_one_and_update(
        {"_id": order_id, "lease_until": lease_until},
        {"$set": {"lease_until": new_lease}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def retire_key(db: Database, order_id: str, key: str) -> bool:
    """Free `key` from a failed attempt (it keeps `<key>~<order id>`) so the key can try again;
    only one concurrent caller wins."""
    doc: Doc | None = await orders(db).find_one_and_update(
        {"_id": order_id, "idempotency_key": key, "status": "failed"},
        {
            "$set": {"idempotency_key": f"{key}~{order_id}", "updated_at": now_iso()},
            "$push": {"status_history": entry("retried")},
        },
    )
    return doc is not None


def entry(status: str, reason: str | None = None) -> Doc:
    item: Doc = {"status": status, "at": now_iso()}
    if reason:
        item["reason"] = reason
    return item
