"""MongoDB access for the catalog: indexes, idempotent seeding, listing and search."""

from __future__ import annotations

import logging
import re
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.kit.clock import now_iso
from services.kit.db import Database
from services.product.catalog import CATEGORIES, PRODUCTS

log = logging.getLogger("product.store")

CURRENCY = "EUR"


async def create_indexes(db: Database) -> None:
    await db.products.create_index([("category", ASCENDING), ("name", ASCENDING)])
    await db.products.create_index([("name", ASCENDING)])
    await db.reservations.create_index([("status", ASCENDING)])


async def seed_catalog(db: Database) -> int:
    """Upsert every seed product by its slug id. Descriptive fields follow the code; stock is only
    written on insert, so restarts and several replicas never duplicate products or reset stock."""
    inserted = 0
    for product in PRODUCTS:
        update = {
            "$set": {
                "name": product.name,
                "description": product.description,
                "category": product.category,
                "price_cents": product.price_cents,
                "currency": CURRENCY,
                "icon": product.icon,
                "image": f"/products/images/{product.category}.svg",
                "badge": product.badge,
                "weight_grams": product.weight_grams,
            },
            "$setOnInsert": {"stock": product.stock, "created_at": now_iso()},
        }
        try:
            result = await db.products.update_one({"_id": product.id}, update, upsert=True)
        except DuplicateKeyError:
            # Another replica inserted it between our match and insert: now it exists, update it.
            result = await db.products.update_one({"_id": product.id}, update, upsert=True)
        inserted += 1 if result.upserted_id is not None else 0
    log.info("catalog seeded: %d products, %d new", len(PRODUCTS), inserted)
    return inserted


def _filter(category: str | None, q: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if category:
        query["category"] = category
    if q:
        # User text is matched literally: regex metacharacters are escaped.
        query["name"] = {"$regex": re.escape(q), "$options": "i"}
    return query


async def list_products(
    db: Database, *, page: int, page_size: int, category: str | None, q: str | None
) -> tuple[list[dict[str, Any]], int]:
    query = _filter(category, q)
    total = await db.products.count_documents(query)
    cursor = (
        db.products.find(query)
        .sort([("name", ASCENDING), ("_id", ASCENDING)])
        .skip((page - 1) * page_size)
        .limit(page_size)
    )
    items: list[dict[str, Any]] = await cursor.to_list(length=None)
    return items, total


async def get_product(db: Database, product_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await db.products.find_one({"_id": product_id})
    return doc


async def category_counts(db: Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for category in CATEGORIES:
        counts[category.id] = await db.products.count_documents({"category": category.id})
    return counts
