"""Load inside the pods' limits: a burst of registrations and logins at auth (Argon2 in 256 MiB: the burst
that OOM-killed auth before its hashing moved to a fixed pool), then `make load` against the whole shop.
Afterwards no container may have been OOM-killed, restarted or stopped; each one's peak memory is reported."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.containers.engine import MemoryWatch
from tests.containers.report import REPORT
from tests.containers.shop import Shop

ROOT = Path(__file__).resolve().parents[2]
BURST = 30  # registrations and logins at once; the old auth died at about 24 hashes
LOAD_RUN_TIME = "30s"
FAILURES_TOLERATED = 0.05  # of make load's requests, and only those an overloaded machine explains (below)


async def _register_and_log_in(auth: httpx.AsyncClient, n: int) -> tuple[int, int] | str:
    email = f"burst-{uuid.uuid4().hex[:6]}-{n}@example.com"
    body = {"email": email, "password": "burst-password", "name": f"Burst {n}"}
    try:
        registered = await auth.post("/auth/register", json=body)
        login = await auth.post("/auth/login", json={"email": email, "password": "burst-password"})
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return registered.status_code, login.status_code


def test_a_burst_of_registrations_and_logins_fits_in_auths_limit(shop: Shop, memory: MemoryWatch) -> None:
    async def burst() -> list[tuple[int, int] | str]:
        async with httpx.AsyncClient(base_url=shop.containers["auth"].http, timeout=120) as auth:
            return await asyncio.gather(*(_register_and_log_in(auth, n) for n in range(BURST)))

    started = time.monotonic()
    results = asyncio.run(burst())
    took = time.monotonic() - started
    state = shop.state("auth")
    limit = shop.containers["auth"].plan.memory_limit_bytes or 0
    assert not state["OOMKilled"], (
        f"auth was OOM-killed at its {limit / 2**20:.0f} MiB limit by {BURST} concurrent registrations + "
        f"logins (exit {state['ExitCode']}; peak working set {memory.peaks['auth'] / 2**20:.0f} MiB)"
    )
    assert state["Running"], (
        f"auth stopped during the burst: {state}\n{shop.docker.logs(shop.containers['auth'].name)}"
    )
    assert results == [(201, 200)] * BURST, results
    cgroup = shop.containers["auth"].cgroup
    assert cgroup is not None
    print(
        f"\n==> {BURST} concurrent registrations + logins at auth in {took:.1f}s; auth peak working set "
        f"{memory.peaks['auth'] / 2**20:.0f} MiB, peak charge {cgroup.peak() / 2**20:.0f} MiB "
        f"of {limit / 2**20:.0f} MiB"
    )


def test_make_load_against_the_whole_shop(shop: Shop, memory: MemoryWatch) -> None:
    """`make load` (the real locustfile, its default shoppers) for a short run against the frontend."""
    run = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "load",
            f"HOST={shop.containers['frontend'].http}",
            f"RUN_TIME={LOAD_RUN_TIME}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    summary = [
        line for line in output.splitlines() if re.match(r"\s*(requests|failures|latency|checkouts)", line)
    ]
    print("\n==> make load, " + LOAD_RUN_TIME + ":\n" + "\n".join(summary))
    REPORT["purchases"].append(f"make load ({LOAD_RUN_TIME}): " + " | ".join(s.strip() for s in summary))
    totals = re.search(r"^requests\s+(\d+)\s*$.*?^failures\s+(\d+)", output, re.MULTILINE | re.DOTALL)
    assert totals, f"make load printed no summary (exit {run.returncode}):\n{output[-3000:]}"
    requests, failed = int(totals.group(1)), int(totals.group(2))
    assert requests > 0, output[-3000:]
    errors = re.findall(r"^failure\s+(\d+)x (\S+ \S+): (.*)$", output, re.MULTILINE)
    tolerated, other = _overload_failures(errors)
    assert not other, (
        f"make load failed with more than an overloaded machine explains: {other}\n{output[-3000:]}"
    )
    assert tolerated == failed, output[-3000:]
    assert failed <= max(2, requests * FAILURES_TOLERATED), (
        f"{failed} of {requests} requests failed, above {FAILURES_TOLERATED:.0%}: {errors}\n{output[-3000:]}"
    )
    if failed:
        note = (
            f"{failed} of {requests} requests failed by the frontend's deadline at load average {_load()}: "
            + ("; ".join(f"{n}x {request}: {error[:60]}" for n, request, error in errors))
        )
        print("==> " + note)
        REPORT["purchases"].append("make load: " + note)
    else:
        assert run.returncode == 0, output[-3000:]


def _overload_failures(errors: list[tuple[str, str, str]]) -> tuple[int, list[str]]:
    """(how many failures an overloaded machine explains, every other failure).

    A 504 Gateway Timeout is the frontend's 5 s deadline on a neighbour (kit http_read_timeout), not a
    defect: on a machine shared with other work, auth gets less than its 0.5 CPU for Argon2. A shopper
    whose registration or login timed out has no token, so its next cart/order calls answer 401: explained
    too, but only when a registration or login did time out.
    """
    timeouts = [
        (int(n), request) for n, request, error in errors if "504 Server Error: Gateway Timeout" in error
    ]
    login_timed_out = any(request in ("POST /api/login", "POST /api/register") for _, request in timeouts)
    tolerated, other = sum(n for n, _ in timeouts), []
    for n, request, error in errors:
        if "504 Server Error: Gateway Timeout" in error:
            continue
        if login_timed_out and "401 Client Error: Unauthorized" in error:
            tolerated += int(n)
        else:
            other.append(f"{n}x {request}: {error}")
    return tolerated, other


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def test_no_container_was_oom_killed_restarted_or_stopped(shop: Shop, memory: MemoryWatch) -> None:
    """Last: every container survived everything above, and each one's peak stayed under its limit."""
    time.sleep(1)  # one more sample after the load
    memory.stop()
    problems = []
    for service, container in shop.containers.items():
        state = shop.state(service)
        restarts = int(shop.docker.inspect(container.name).get("RestartCount", 0))
        cgroup, limit = container.cgroup, container.plan.memory_limit_bytes
        assert cgroup is not None and limit is not None
        oom_kills = cgroup.oom_kills() if state["Running"] else -1
        REPORT["memory"][service] = {
            "limit": limit,
            "peak": cgroup.peak() if state["Running"] else None,  # the cgroup is gone with the container
            "working_set": memory.peaks[service],
            "oom_kills": oom_kills,
            "restarts": restarts,
            "status": state["Status"],
        }
        if not state["Running"] or state["OOMKilled"] or restarts or oom_kills:
            problems.append(
                f"{service}: {state['Status']} (exit {state['ExitCode']}, OOMKilled "
                f"{state['OOMKilled']}, restarts {restarts}, oom_kill {oom_kills})"
            )
        elif memory.peaks[service] >= limit:
            problems.append(f"{service}: peak working set {memory.peaks[service]} >= limit {limit}")
    assert not problems, problems
