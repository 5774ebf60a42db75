"""argon2id password hashing on a fixed pool of two threads, with equal work for unknown accounts."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.kit.cpu_pool import CpuPool

# OWASP's argon2id configuration (19 MiB, 2 passes, 1 lane): strong, and small enough for a pod with a
# 256 MiB limit (argon2-cffi's default profile needs 64 MiB per hash). Hashes made with other settings still
# verify and are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Hashing runs on two dedicated threads, never on a shared pool: only these two threads ever hold a 19 MiB
# Argon2 buffer, so a burst of logins costs queueing time, not memory (services/kit/cpu_pool.py says why).
HASHING = CpuPool("argon2", threads=2)
# Verified against when the account does not exist, so "unknown email" costs the same as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    """An argon2id hash of `password` (PHC string format), computed on the hashing threads."""
    return await HASHING.run(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash it does the same work and returns False."""
    ok = await HASHING.run(_verify, stored_hash or _DUMMY_HASH, password)
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
