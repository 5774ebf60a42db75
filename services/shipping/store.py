"""MongoDB access for shipments: one per order id (unique index); times decide the status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.kit.clock import iso
from services.kit.clock import utc_now as now
from services.kit.db import Database

Doc = dict[str, Any]


def shipments(db: Database) -> Any:
    return db["shipments"]


async def ensure_indexes(db: Database) -> None:
    await shipments(db).create_index("order_id", unique=True)
    await shipments(db).create_index("tracking_number", unique=True)


async def insert(db: Database, doc: Doc) -> bool:
    """False when the order already has a shipment."""
    try:
        await shipments(db).insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def by_order(db: Database, order_id: str) -> Doc | None:
    doc: Doc | None = await shipments(db).find_one({"order_id": order_id})
    return doc


async def get(db: Database, shipment_id: str) -> Doc | None:
    doc: Doc | None = await shipments(db).find_one({"_id": shipment_id})
    return doc


def status_of(doc: Doc, at: datetime) -> str:
    moment = iso(at)
    if moment >= doc["delivered_at"]:
        return "delivered"
    return "shipped" if moment >= doc["shipped_at"] else "created"


async def advance(db: Database, doc: Doc) -> Doc | None:
    """Move a shipment one step now (created -> shipped -> delivered); None if it moved meanwhile."""
    moment = now()
    stamp = iso(moment)
    status = status_of(doc, moment)
    if status == "created":
        # Shipped now; delivery keeps its planned time (never earlier than now).
        changes = {"shipped_at": stamp, "delivered_at": max(doc["delivered_at"], stamp)}
        guard = {"shipped_at": doc["shipped_at"]}
    else:
        changes = {"delivered_at": stamp}
        guard = {"delivered_at": doc["delivered_at"]}
    moved: Doc | None = await shipments(db).find_one_and_update(
        {"_id": doc["_id"], **guard}, {"$set": changes}, return_document=ReturnDocument.AFTER
    )
    return moved


def planned(created: datetime, ship_after: float, deliver_after: float) -> tuple[str, str]:
    return iso(created + timedelta(seconds=ship_after)), iso(created + timedelta(seconds=deliver_after))
