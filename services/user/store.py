"""MongoDB access for user: one document per user (`_id` = token `sub`) with its addresses embedded.

Addresses are a small bounded list owned by one user, so they live inside the profile document:
every change is a single-document atomic update, the limit check and the insert are one operation,
and a query can never reach another user's address.
"""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ReturnDocument

from services.kit import ApiError
from services.kit.clock import now_iso
from services.kit.db import Database

Doc = dict[str, Any]


async def create_indexes(db: Database) -> None:
    await db.profiles.create_index([("created_at", 1), ("_id", 1)])


async def get_or_create(db: Database, user_id: str, email: str, name: str) -> Doc:
    """The profile, created from the token's claims on first sight (atomic upsert: no duplicates)."""
    now = now_iso()
    doc = await db.profiles.find_one_and_update(
        {"_id": user_id},
        {
            "$setOnInsert": {
                "email": email,
                "name": name,
                "phone": None,
                "addresses": [],
                "created_at": now,
                "updated_at": now,
            }
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:  # an upsert always returns the document
        raise RuntimeError("upsert returned no document")
    return doc


async def update_profile(db: Database, user_id: str, email: str, name: str, phone: str | None) -> Doc:
    now = now_iso()
    doc = await db.profiles.find_one_and_update(
        {"_id": user_id},
        {
            "$set": {"name": name, "phone": phone, "updated_at": now},
            "$setOnInsert": {"email": email, "addresses": [], "created_at": now},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise RuntimeError("upsert returned no document")
    return doc


async def list_profiles(db: Database, page: int, page_size: int) -> tuple[list[Doc], int]:
    total = await db.profiles.count_documents({})
    cursor = (
        db.profiles.find({}, {"addresses": 0})
        .sort([("created_at", 1), ("_id", 1)])
        .skip((page - 1) * page_size)
        .limit(page_size)
    )
    return await cursor.to_list(length=None), total


async def add_address(db: Database, user_id: str, fields: dict[str, Any], limit: int) -> Doc | None:
    """Append an address unless the user already has `limit` (None then); the check is part of the update."""
    now = now_iso()
    address = {"id": uuid.uuid4().hex, **fields, "created_at": now, "updated_at": now}
    result = await db.profiles.update_one(
        {"_id": user_id, f"addresses.{limit - 1}": {"$exists": False}},
        {"$push": {"addresses": address}, "$set": {"updated_at": now}},
    )
    return address if result.matched_count else None


async def replace_address(db: Database, user_id: str, address_id: str, fields: dict[str, Any]) -> Doc | None:
    """Change one address (None when the user has no such address). The list is written whole, guarded
    by the profile's `updated_at` (every change moves it), so a concurrent change makes us read again
    instead of undoing it. Not MongoDB's positional `addresses.$` update: FerretDB 1.x does not have it
    (docs/ferretdb.md), and the shop runs on both."""
    for _ in range(10):
        profile = await db.profiles.find_one({"_id": user_id, "addresses.id": address_id})
        if profile is None:
            return None
        now = now_iso()
        addresses = [
            {**a, **fields, "updated_at": now} if a["id"] == address_id else a for a in profile["addresses"]
        ]
        doc = await db.profiles.find_one_and_update(
            {"_id": user_id, "updated_at": profile["updated_at"]},
            {"$set": {"addresses": addresses, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return next((a for a in doc["addresses"] if a["id"] == address_id), None)
    raise ApiError(409, "conflict", "the addresses changed meanwhile; try again")


async def delete_address(db: Database, user_id: str, address_id: str) -> bool:
    result = await db.profiles.update_one(
        {"_id": user_id, "addresses.id": address_id},
        {"$pull": {"addresses": {"id": address_id}}, "$set": {"updated_at": now_iso()}},
    )
    return result.modified_count > 0
