"""`make chaos SCENARIO=<name>`: Locust shoppers + a scenario's fault schedule, then the report.

    python -m chaos.run                          list the scenarios
    python -m chaos.run NAME [--short]           a local scenario: its own stack on FerretDB, free ports
    python -m chaos.run NAME --host URL [--mesh istio|linkerd] [--dry-run]   a cluster scenario

Writes artifacts/chaos/<name>/ (or --out): report.md (SLO table, windows, faults, data audit), plot.png,
locust.html (Locust's own report), requests.csv (every request), audit.json, logs/. Exits 1 naming every
missed SLO, 2 for a bad scenario or a stack that does not start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from chaos import audit as auditing
from chaos import report
from chaos.faults import STARTUP_SECONDS, ClusterFaults, LocalFaults
from chaos.scenario import Scenario, ScenarioError, load, names
from scripts.dev import SERVICES, FerretDB, Stack, ferretdb_binary, free_port, stack_env, with_free_ports

ROOT = Path(__file__).resolve().parent.parent
LOCUST = Path(sys.executable).with_name("locust")
# What --short runs (make chaos-test): the same faults and SLOs with shorter steady states and pauses.
SHORT = {"before": 15.0, "after": 15.0, "pause": 8.0}
# A request is logged when it ends; the frontend answers within its 5 s call timeouts plus its own work.
IN_FLIGHT_SECONDS = 8.0
# What --short reports without failing on: the shared CI machine's load moves latency and success rates;
# the data SLOs and the recovery time are what make chaos-test is for.
SHORT_REPORTED_ONLY = frozenset({"success_rate_before", "success_rate_after", "p95_after_ms"})
# Fast settling for chaos runs (a student's make dev keeps the defaults: 60 s lease, 10 s grace).
CHAOS_STACK = {
    "CHECKOUT_LEASE_SECONDS": "10",
    "SETTLE_GRACE_SECONDS": "3",
    "SETTLE_POLL_SECONDS": "1",
    "SETTLE_RETRY_SECONDS": "2",
    # The shipment tracker searches all orders; FerretDB scans the collection for that (docs/ferretdb.md).
    "TRACK_POLL_SECONDS": "5",
    "SHIP_AFTER_SECONDS": "20",
    "DELIVER_AFTER_SECONDS": "600",
    "LOG_LEVEL": "INFO",
}
# product's gRPC Inventory gives up a half-done reservation claim of a dead process after 30 s
# (services/product/inventory.py LEASE_SECONDS): the longest anything can stay held after a kill.
RESERVATION_LEASE = 30.0


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def shorten(scenario: Scenario) -> Scenario:
    faults = tuple(replace(f, pause=min(f.pause, SHORT["pause"])) for f in scenario.faults)
    return replace(
        scenario,
        before=SHORT["before"],
        after=SHORT["after"],
        faults=faults,
        reported_only=SHORT_REPORTED_ONLY,
    )


def settle_bound(env: dict[str, str]) -> float:
    """Seconds after the load within which every checkout must be settled (services/order/settle.py)."""
    lease = float(env.get("CHECKOUT_LEASE_SECONDS", 60))
    grace = float(env.get("SETTLE_GRACE_SECONDS", 10))
    poll = float(env.get("SETTLE_POLL_SECONDS", 1))
    retry = float(env.get("SETTLE_RETRY_SECONDS", 5))
    return lease + grace + poll + 2 * retry + RESERVATION_LEASE


def locust_cap(scenario: Scenario, planned: float) -> float:
    """Locust's own time limit, far above the run: the schedule stops it (stop_locust). Each fault may
    add its restart (30 s and more on a busy 2-core machine) and the wait for recovery."""
    per_fault = 120 + scenario.slo["recovery_seconds"] + report.RECOVERY_WINDOW + IN_FLIGHT_SECONDS
    return planned * 2 + len(scenario.faults) * per_fault + 300


def start_locust(scenario: Scenario, host: str, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHAOS_REQUEST_LOG": str(out / "requests.csv"), "PYTHONPATH": str(ROOT)}
    command = [
        str(LOCUST),
        "-f", str(ROOT / "chaos" / "locustfile.py"),
        "--headless",
        "-u", str(scenario.users),
        "-r", str(scenario.spawn_rate),
        "-t", f"{int(seconds)}s",
        "--host", host,
        "--html", str(out / "locust.html"),
        "--only-summary",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    log = (out / "logs" / "locust.log").open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_locust(locust: subprocess.Popen[bytes]) -> None:
    if locust.poll() is None:
        locust.send_signal(signal.SIGTERM)  # Locust stops the users and writes its HTML report
        try:
            locust.wait(60)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust.wait()


def first_request(out: Path, locust: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """When Locust's first request started (Locust itself takes seconds to start on a busy machine)."""
    deadline = time.monotonic() + timeout
    log = out / "requests.csv"
    while time.monotonic() < deadline:
        if log.exists():
            rows = log.read_text().splitlines()
            if len(rows) > 1:
                return float(rows[1].split(",", 1)[0])
        if locust.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"Locust sent no request (log: {out / 'logs' / 'locust.log'})")


def wait_recovered(
    request_log: Path, timeline: report.Timeline, fault: report.FaultWindow, limit: float
) -> float | None:
    """Wait (at most `limit` s after the fault's end) until the requests so far show the shop recovered
    from `fault` (report.recovery_seconds), so the next fault never lands on this one's recovery.
    Requests are logged when they end: only the requests up to IN_FLIGHT_SECONDS ago are judged."""
    while True:
        now = time.time()
        partial = replace(timeline, faults=(*timeline.faults, fault), load_end=now - IN_FLIGHT_SECONDS)
        recovered = report.recovery_seconds(report.read_requests(request_log), partial, fault)
        if recovered is not None or now - fault.end >= limit:
            return recovered
        time.sleep(1)


def run_schedule(
    scenario: Scenario, faults: LocalFaults | ClusterFaults, load_start: float, request_log: Path
) -> report.Timeline:
    steady_start = load_start + scenario.users / scenario.spawn_rate + 2
    time.sleep(max(0.0, steady_start - time.time()))
    say(f"steady state for {scenario.before:.0f}s")
    time.sleep(scenario.before)
    windows: list[report.FaultWindow] = []
    # Normal load after each fault until the shop has recovered (at most the recovery SLO plus a
    # recovery window), then the scenario's pause: on a loaded machine a restart can outlast the pause.
    limit = scenario.slo["recovery_seconds"] + report.RECOVERY_WINDOW + IN_FLIGHT_SECONDS + 2
    for index, fault in enumerate(scenario.faults, 1):
        say(
            f"fault {index}/{len(scenario.faults)}: {fault.label()}"
            + (f" for {fault.hold:.0f}s" if fault.hold else "")
        )
        start = time.time()
        faults.apply(fault)
        end = time.time()
        window = report.FaultWindow(fault.label(), start, end)
        say(f"  {fault.label()}: restored after {end - start:.1f}s")
        so_far = report.Timeline(load_start, steady_start, tuple(windows), time.time())
        recovered = wait_recovered(request_log, so_far, window, limit)
        say(
            f"  recovered {recovered:.1f}s after that"
            if recovered is not None
            else f"  not recovered {limit:.0f}s after that"
        )
        windows.append(window)
        say(f"  {fault.pause:.0f}s of normal load")
        time.sleep(fault.pause)
    say(f"after the faults: {scenario.after:.0f}s")
    time.sleep(scenario.after)
    return report.Timeline(load_start, steady_start, tuple(windows), time.time())


def wait_settled(client: auditing.MongoClient, bound: float) -> float:  # type: ignore[name-defined]
    start = time.monotonic()
    left = auditing.open_orders(client)
    while left and time.monotonic() - start < bound:
        time.sleep(1)
        left = auditing.open_orders(client)
    waited = time.monotonic() - start
    say(f"settling: {left} checkouts still open after {waited:.0f}s (bound {bound:.0f}s)")
    return waited


def machine(load_at_start: float) -> str:
    """The machine a run shared: its cores and load average (1 min) at the start and the end of the run."""
    end = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load average {load_at_start:.1f} at the start, {end:.1f} at the end"


def run_local(scenario: Scenario, out: Path) -> int:
    load_at_start = os.getloadavg()[0]
    logs = out / "logs"
    logs.mkdir(parents=True)
    say(f"{scenario.name}: {scenario.description}")
    database = FerretDB(ferretdb_binary(), free_port(), out / ".data", logs / "ferretdb.log")
    services = with_free_ports(SERVICES)
    env = stack_env(services, {**CHAOS_STACK, **scenario.stack, "MONGO_URL": database.url})
    faults = LocalFaults(database, logs)
    stack = Stack(services, env, log_dir=logs)
    faults.stack = stack
    try:
        say(f"FerretDB on 127.0.0.1:{database.port} (data in {out / '.data'})")
        database.start()
        for name in scenario.proxies:  # the callers of `name` get the proxy's URL instead of its own
            proxy = faults.start_proxy(name, stack.url(name))
            stack.env[f"{name.upper()}_URL"] = proxy
            say(f"fault proxy in front of {name}: {proxy}")
        say("starting the eight services")
        stack.start(timeout=STARTUP_SECONDS)
        client = auditing.connect(database.url)
        before = auditing.snapshot(client)
        planned = scenario.planned_seconds + scenario.users / scenario.spawn_rate + 2
        say(f"{scenario.users} shoppers, about {planned:.0f}s of load plus restarts")
        locust = start_locust(scenario, stack.url("frontend"), out, locust_cap(scenario, planned))
        try:
            timeline = run_schedule(scenario, faults, first_request(out, locust), out / "requests.csv")
        finally:
            stop_locust(locust)
        waited = wait_settled(client, settle_bound(env))
        result = auditing.audit(client, before, seen_paid(out))
        client.close()
    finally:
        faults.close()
        stack.stop()
        database.stop()
    facts = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(load_at_start),
        "target": "local stack (scripts/dev.py) on FerretDB (SQLite), free ports",
        "shoppers": f"{scenario.users} (Locust, loadtest/locustfile.py journeys)",
        "load": f"{timeline.load_end - timeline.load_start:.0f} s",
        "settled": f"{waited:.0f} s after the load (bound {settle_bound(env):.0f} s)",
        "order settings": ", ".join(
            f"{k}={v}" for k, v in env.items() if k.startswith(("CHECKOUT", "SETTLE"))
        ),
    }
    return finish(scenario, out, timeline, result, facts)


def seen_paid(out: Path) -> set[str]:
    requests = report.read_requests(out / "requests.csv")
    return {r.order_id for r in requests if r.order_id}


def finish(
    scenario: Scenario,
    out: Path,
    timeline: report.Timeline,
    result: auditing.Audit | None,
    facts: dict[str, str],
) -> int:
    requests = report.read_requests(out / "requests.csv")
    stats = report.windows(requests, timeline)
    recoveries = [report.recovery_seconds(requests, timeline, f) for f in timeline.faults]
    verdicts = report.verdicts(scenario, stats, recoveries, result)
    facts = {**facts, "requests": str(len(requests))}
    (out / "report.md").write_text(
        report.markdown(scenario, facts, timeline, stats, recoveries, result, verdicts)
    )
    report.plot(requests, timeline, out / "plot.png", scenario.name)
    if result is not None:
        (out / "audit.json").write_text(json.dumps(result.as_dict(), indent=2))
    say(f"report: {out / 'report.md'} (plot.png, locust.html, requests.csv, audit.json)")
    for s in stats:
        say(
            f"  {s.name:<6} {s.requests:>6} requests  success {s.success_rate:.2%}  p50 {s.p50:.0f} ms  "
            f"p95 {s.p95:.0f} ms  p99 {s.p99:.0f} ms"
        )
    missed = [v for v in verdicts if v.missed]
    for v in verdicts:
        shown = "not measured" if v.value is None else f"{v.value:g}"
        bound = f"{'>=' if v.kind == 'min' else '<='} {v.threshold:g}"
        say(f"  SLO {v.name:<28} {report.verdict_word(v):<6} {shown} ({bound})")
    if missed:
        print(
            f"chaos {scenario.name}: MISSED SLO: "
            + ", ".join(
                f"{v.name} ({'not measured' if v.value is None else f'{v.value:g}'}, "
                f"{'needs >=' if v.kind == 'min' else 'allowed <='} {v.threshold:g})"
                for v in missed
            ),
            file=sys.stderr,
        )
        return 1
    say(f"chaos {scenario.name}: every SLO met")
    return 0


def run_cluster(scenario: Scenario, out: Path, host: str | None, mesh: str, dry_run: bool) -> int:
    load_at_start = os.getloadavg()[0]
    faults = ClusterFaults(mesh, dry_run)
    if dry_run:
        say(f"{scenario.name} (DRY_RUN): {scenario.description}")
        say(f"load: locust -f chaos/locustfile.py --headless -u {scenario.users} against {host or '$HOST'}")
        for fault in scenario.faults:
            faults.apply(fault)
        say("then: the report from requests.csv and the data audit (AUDIT_MONGO_URL)")
        return 0
    if not host:
        print("cluster scenarios need HOST= (the shop's URL, e.g. http://localhost)", file=sys.stderr)
        return 2
    try:
        urllib.request.urlopen(f"{host}/healthz", timeout=5).close()
    except OSError as exc:
        print(
            f"the shop does not answer at {host}/healthz ({exc}); is the cluster up (make up)?",
            file=sys.stderr,
        )
        return 2
    (out / "logs").mkdir(parents=True)
    client = auditing.connect(os.environ["AUDIT_MONGO_URL"]) if os.environ.get("AUDIT_MONGO_URL") else None
    before = auditing.snapshot(client) if client else None
    planned = scenario.planned_seconds + scenario.users / scenario.spawn_rate + 2
    locust = start_locust(scenario, host, out, locust_cap(scenario, planned))
    try:
        timeline = run_schedule(scenario, faults, first_request(out, locust), out / "requests.csv")
    finally:
        stop_locust(locust)
    result = None
    if client is not None and before is not None:
        wait_settled(client, settle_bound({}))
        result = auditing.audit(client, before, seen_paid(out))
    facts = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(load_at_start),
        "target": f"{host} (mesh: {mesh})",
        "shoppers": str(scenario.users),
        "load": f"{timeline.load_end - timeline.load_start:.0f} s",
    }
    return finish(scenario, out, timeline, result, facts)


def list_scenarios() -> int:
    print("scenarios (make chaos SCENARIO=<name>; chaos/README.md explains each):\n")
    for name in names():
        scenario = load(name)
        minutes = f"~{scenario.planned_seconds / 60:.0f} min"
        print(f"  {name:<22} {scenario.target:<8} {minutes:<7} {scenario.description[:90]}")
    print(
        "\nlocal: its own stack on FerretDB; cluster: HOST=<shop URL> MESH=istio|linkerd, DRY_RUN=1 to print"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?")
    parser.add_argument(
        "--short", action="store_true", help="shorter steady states and pauses (make chaos-test)"
    )
    parser.add_argument("--out", type=Path, help="report folder (default artifacts/chaos/<scenario>)")
    parser.add_argument(
        "--host", default=os.environ.get("HOST") or None, help="cluster scenarios: the shop's URL"
    )
    parser.add_argument("--mesh", default=os.environ.get("MESH") or "none")
    parser.add_argument("--dry-run", action="store_true", default=os.environ.get("DRY_RUN") == "1")
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, kill) stops the run like Ctrl-C: processes stopped, nothing left behind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if not args.scenario:
        return list_scenarios()
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.short:
        scenario = shorten(scenario)
    out = args.out or ROOT / "artifacts" / "chaos" / scenario.name
    if scenario.target == "cluster":
        if out.exists() and not args.dry_run:
            shutil.rmtree(out)
        return run_cluster(scenario, out, args.host, args.mesh, args.dry_run)
    if args.dry_run:
        say(f"{scenario.name} (DRY_RUN): a local stack on FerretDB, {scenario.users} shoppers, faults:")
        for fault in scenario.faults:
            say(
                f"  {fault.label()}"
                + (f" for {fault.hold:.0f}s" if fault.hold else "")
                + f", then {fault.pause:.0f}s"
            )
        return 0
    if out.exists():
        shutil.rmtree(out)
    try:
        return run_local(scenario, out)
    except RuntimeError as exc:
        print(f"chaos {scenario.name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
