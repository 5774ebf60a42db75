"""argon2id password hashing, off the event loop, with equal work for unknown accounts."""

from __future__ import annotations

import secrets
import threading

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id configuration (19 MiB, 2 passes, 1 lane): strong, and small enough for a pod with a
# 256 MiB limit. At most two hashes run at once, so a burst of logins cannot exhaust the pod's memory
# (argon2-cffi's default profile needs 64 MiB per hash). Hashes made with other settings still verify
# and are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_slots = threading.BoundedSemaphore(2)
# Verified against when the account does not exist, so "unknown email" costs the same as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _hash(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def _verify(stored_hash: str, password: str) -> bool:
    with _slots:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash it does the same work and returns False."""
    ok = await anyio.to_thread.run_sync(_verify, stored_hash or _DUMMY_HASH, password)
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
