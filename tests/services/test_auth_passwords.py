"""Password hashing under a burst: memory stays bounded however many logins arrive at once.

auth was OOM-killed at its 256 MiB limit by ~24 concurrent hashes: each thread of a growing pool kept its own
19 MiB Argon2 buffer (services/kit/cpu_pool.py). This runs a burst in a fresh process and reads its resident
memory from /proc, so it sees what the kernel would count against the pod's limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.auth import passwords

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
BURST = 32  # registrations and logins at once: more than the ~24 that killed the pod
ARGON2_BUFFER_MIB = 19

PROBE = f"""
import asyncio, json, threading
from services.auth import passwords

def rss_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def hashing_threads():
    return sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())

async def burst():
    stored = await passwords.hash_password("warm-up password")  # the pool's first thread, the event loop
    before = rss_mib("VmRSS")
    hashes = await asyncio.gather(*(passwords.hash_password(f"password {{i}}") for i in range({BURST})))
    checks = await asyncio.gather(
        *(passwords.verify_password(h, f"password {{i}}") for i, h in enumerate(hashes))
    )
    unknown = await passwords.verify_password(None, "anything")
    return before, all(checks), unknown, await passwords.verify_password(stored, "wrong")

before, verified, unknown, wrong = asyncio.run(burst())
print(json.dumps({{"before": before, "after": rss_mib("VmRSS"), "peak": rss_mib("VmHWM"),
                  "verified": verified, "unknown": unknown, "wrong": wrong, "threads": hashing_threads()}}))
"""


@pytest.fixture(scope="module")
def burst() -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


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
