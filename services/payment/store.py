"""MongoDB access for payments: one document per order id (unique index), claimed before processing."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.kit.clock import now_iso
from services.kit.db import Database

Doc = dict[str, Any]


def payments(db: Database) -> Any:
    return db["payments"]


async def ensure_indexes(db: Database) -> None:
    await payments(db).create_index("order_id", unique=True)
    await payments(db).create_index("user_id")


async def claim(db: Database, doc: Doc) -> bool:
    """Insert a `processing` payment; False when the order already has one."""
    try:
        await payments(db).insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def by_order(db: Database, order_id: str) -> Doc | None:
    doc: Doc | None = await payments(db).find_one({"order_id": order_id})
    return doc


async def get(db: Database, payment_id: str) -> Doc | None:
    doc: Doc | None = await payments(db).find_one({"_id": payment_id})
    return doc


async def take_over(db: Database, payment_id: str, claimed_at: str) -> Doc | None:
    """Re-claim a stale `processing` payment; only one caller wins (conditional update)."""
    doc: Doc | None = await payments(db).find_one_and_update(
        {"_id": payment_id, "status": "processing", "claimed_at": claimed_at},
        {"$set": {"claimed_at": now_iso()}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def finish(db: Database, payment_id: str, fields: Doc) -> Doc | None:
    doc: Doc | None = await payments(db).find_one_and_update(
        {"_id": payment_id, "status": "processing"},
        {"$set": {**fields, "updated_at": now_iso()}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def unclaim(db: Database, payment_id: str) -> None:
    """Forget a claim whose processing failed before any outcome, so a retry can charge again."""
    await payments(db).delete_one({"_id": payment_id, "status": "processing"})


async def cancel(db: Database, order_id: str) -> bool:
    """Record that nothing may ever be charged for `order_id` (a `canceled` payment: no card, amount 0);
    False when the order already has a payment (charged, declined, processing, or canceled before)."""
    now = now_iso()
    doc: Doc = {
        "_id": uuid.uuid4().hex,
        "order_id": order_id,
        "user_id": None,
        "status": "canceled",
        "amount_cents": 0,
        "currency": None,
        "card": None,
        "provider": None,
        "created_at": now,
        "canceled_at": now,
    }
    doc["id"] = doc["_id"]
    return await claim(db, doc)


async def cancel_stale(db: Database, payment_id: str, claimed_at: str) -> Doc | None:
    """`processing` -> `canceled` for a claim whose process died before any outcome (simulated processor:
    nothing happens outside this record); only one caller wins."""
    now = now_iso()
    doc: Doc | None = await payments(db).find_one_and_update(
        {"_id": payment_id, "status": "processing", "claimed_at": claimed_at},
        {"$set": {"status": "canceled", "canceled_at": now, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def refund(db: Database, payment_id: str) -> Doc | None:
    """succeeded -> refunded, atomically; None when the payment is not in `succeeded`."""
    now = now_iso()
    doc: Doc | None = await payments(db).find_one_and_update(
        {"_id": payment_id, "status": "succeeded"},
        {"$set": {"status": "refunded", "refunded_at": now, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    return doc
