"""Password hashing under a burst: memory stays bounded however many logins arrive at once.

auth was OOM-killed at its 256 MiB limit by ~24 concurrent hashes: each thread of a growing pool kept its own
19 MiB Argon2 buffer (services/kit/cpu_pool.py). This runs a burst in a fresh process and reads its resident
memory from /proc, so it sees what the kernel would count against the pod's limit.
"""

from __future__ import annotations

from services.auth import passwords
from tests.services.auth.helpers import BURST

MIB = 1024 * 1024
ARGON2_BUFFER_MIB = 19


def test_a_burst_of_hashes_keeps_memory_bounded_by_the_hashing_threads(burst: dict[str, object]) -> None:
    grown = float(burst["after"]) - float(burst["before"])  # type: ignore[arg-type]
    # Two hashing threads may each keep one Argon2 buffer; one thread per request would keep 32 of them.
    bound = (passwords.HASHING.threads + 1) * ARGON2_BUFFER_MIB
    assert grown <= bound, (
        f"{BURST} concurrent hashes grew resident memory by {grown:.0f} MiB (bound {bound} MiB): "
        f"hashing threads keep their Argon2 buffers ({burst})"
    )


def test_the_burst_still_hashes_and_verifies_correctly(burst: dict[str, object]) -> None:
    assert burst["verified"] is True
    assert burst["unknown"] is False and burst["wrong"] is False


def test_hashing_uses_only_its_own_fixed_threads(burst: dict[str, object]) -> None:
    threads = burst["threads"]
    assert isinstance(threads, list)
    hashing = [name for name in threads if name.startswith("cpu-argon2")]
    assert 1 <= len(hashing) <= passwords.HASHING.threads, threads
    assert len(threads) == len(hashing), f"threads other than the hashing pool did work: {threads}"
