"""MongoDB access for the outbox: unique (user_id, dedupe_key) makes (user, kind, order_id) idempotent."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.kit.db import Database

Doc = dict[str, Any]


def outbox(db: Database) -> Any:
    return db["outbox"]


async def ensure_indexes(db: Database) -> None:
    await outbox(db).create_index([("user_id", 1), ("dedupe_key", 1)], unique=True)
    await outbox(db).create_index([("user_id", 1), ("created_at", -1)])


async def add(db: Database, doc: Doc) -> tuple[Doc, bool]:
    """Store a notification; (existing, False) when the same (user, kind, order_id) is already there."""
    try:
        await outbox(db).insert_one(doc)
    except DuplicateKeyError:
        existing: Doc | None = await outbox(db).find_one(
            {"user_id": doc["user_id"], "dedupe_key": doc["dedupe_key"]}
        )
        if existing is not None:
            return existing, False
        raise
    return doc, True


async def for_user(db: Database, user_id: str, limit: int) -> list[Doc]:
    cursor = outbox(db).find({"user_id": user_id}).sort([("created_at", -1), ("_id", -1)]).limit(limit)
    docs: list[Doc] = await cursor.to_list(length=None)
    return docs
