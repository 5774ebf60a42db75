"""MongoDB access for auth: accounts, hashed refresh tokens, failed-login counters.

Every write is a single-document atomic operation, so several replicas can share the database.
Datetimes are naive UTC (what PyMongo returns); TTL indexes delete expired tokens and counters (where the
server has them), and every query ignores expired ones anyway.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from services.kit.db import Database

log = logging.getLogger("auth.store")
NOT_IMPLEMENTED = 238  # MongoDB's error code NotImplemented
Doc = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def create_indexes(db: Database) -> None:
    await db.users.create_index("email", unique=True)
    await db.refresh_tokens.create_index("family")
    for collection in (db.refresh_tokens, db.login_attempts):
        await _expire_index(collection)


async def _expire_index(collection: Any) -> None:
    """A TTL index on `expires_at`: MongoDB deletes expired documents by itself. Only housekeeping: every
    query here already ignores expired documents, so on a server without TTL indexes (FerretDB 1.x answers
    NotImplemented, docs/ferretdb.md) they just stay, and the service starts all the same."""
    try:
        await collection.create_index("expires_at", expireAfterSeconds=0)
    except OperationFailure as exc:
        if exc.code != NOT_IMPLEMENTED:
            raise
        log.warning("%s: this MongoDB server has no TTL indexes; expired documents stay", collection.name)


# --- accounts ---------------------------------------------------------------------------------------


class EmailTaken(Exception):
    pass


async def create_user(db: Database, email: str, name: str, password_hash: str, beta_tester: bool) -> Doc:
    user: Doc = {
        "_id": uuid.uuid4().hex,
        "email": email,
        "name": name,
        "password_hash": password_hash,
        "beta_tester": beta_tester,
        "created_at": utcnow(),
    }
    try:
        await db.users.insert_one(user)
    except DuplicateKeyError:
        raise EmailTaken(email) from None
    return user


async def find_user_by_email(db: Database, email: str) -> Doc | None:
    return await db.users.find_one({"email": email})


async def find_user(db: Database, user_id: str) -> Doc | None:
    return await db.users.find_one({"_id": user_id})


async def replace_password_hash(db: Database, user_id: str, password_hash: str) -> None:
    await db.users.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})


# --- refresh tokens: opaque, stored as SHA-256 (they are 256-bit random, so a fast hash is enough) ------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_refresh_token(db: Database, user_id: str, family: str, ttl_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await db.refresh_tokens.insert_one(
        {
            "_id": _digest(token),
            "user_id": user_id,
            "family": family,  # every token descending from one login
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "used_at": None,
        }
    )
    return token


async def consume_refresh_token(db: Database, token: str) -> Doc | None:
    """Mark a live token used and return it; None when unknown, expired or already used.

    Presenting an already-used token means it was copied: the whole family (every token descending
    from that login) is revoked, as OAuth 2.0 Security BCP (RFC 9700, 4.14) recommends.
    """
    now = utcnow()
    digest = _digest(token)
    doc = await db.refresh_tokens.find_one_and_update(
        {"_id": digest, "used_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        return doc
    old = await db.refresh_tokens.find_one({"_id": digest})
    if old is not None and old.get("used_at") is not None:
        result = await db.refresh_tokens.update_many(
            {"family": old["family"], "used_at": None}, {"$set": {"used_at": now, "revoked": "reuse"}}
        )
        log.warning(
            "refresh token reused for user %s: revoked %d live token(s) of its family",
            old["user_id"],
            result.modified_count,
        )
    return None


def new_family() -> str:
    return uuid.uuid4().hex


# --- failed-login throttling, per account (known or not, so it reveals nothing) ----------------------


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    window: timedelta
    lockout: timedelta


async def begin_login_attempt(db: Database, email: str, throttle: Throttle) -> int:
    """Count this attempt; return 0 to go ahead, or the seconds to wait when the account is locked.

    Attempts are counted BEFORE the password is checked, so a burst of parallel guesses cannot slip
    past the limit; a successful login clears the counter (`clear_login_attempts`).
    """
    col = db.login_attempts
    now = utcnow()
    locked = await col.find_one({"_id": email, "locked_until": {"$gt": now}})
    if locked is not None:
        return _seconds_until(locked["locked_until"], now)
    doc = await _count_in_window(db, email, now, throttle)
    if doc["attempts"] <= throttle.max_failures:
        return 0
    until = now + throttle.lockout
    # Lock, and start a fresh window so the account gets its full allowance once the lock ends.
    await col.update_one(
        {"_id": email},
        {"$set": {"locked_until": until, "attempts": 0, "window_start": until, "expires_at": until}},
    )
    log.warning("login locked for %s for %ss after repeated failures", email, throttle.lockout.seconds)
    return _seconds_until(until, now)


async def _count_in_window(db: Database, email: str, now: datetime, throttle: Throttle) -> Doc:
    col = db.login_attempts
    cutoff = now - throttle.window
    expires = now + max(throttle.window, throttle.lockout)
    for _ in range(5):
        doc = await col.find_one_and_update(
            {"_id": email, "window_start": {"$gt": cutoff}},
            {"$inc": {"attempts": 1}, "$set": {"expires_at": expires}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:  # the window is over: start a new one
            doc = await col.find_one_and_update(
                {"_id": email, "window_start": {"$lte": cutoff}},
                {"$set": {"attempts": 1, "window_start": now, "expires_at": expires}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is not None:
            return doc
        fresh: Doc = {"_id": email, "attempts": 1, "window_start": now, "expires_at": expires}
        try:
            await col.insert_one(fresh)
            return fresh
        except DuplicateKeyError:
            continue  # another replica created it meanwhile: count on that one
    raise RuntimeError(f"could not count a login attempt for {email}")


async def clear_login_attempts(db: Database, email: str) -> None:
    await db.login_attempts.delete_one({"_id": email, "locked_until": {"$not": {"$gt": utcnow()}}})


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
