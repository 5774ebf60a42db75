"""make bench's harness: wrk scripts and summaries, the figures it derives, the targets it judges, and one
real wrk run against the bare reference app (wrk from Debian: `make wrk` installs it)."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import usage, wrk
from bench.cases import ANON_CEILING_MB, BY_NAME, CASES, DEFAULT_ANON_CEILING_MB, anon_ceiling_mb
from bench.report import Measurement, over_ceiling, process_table, summarize, table, verdict_lines, verdicts
from bench.result import Result, from_latencies, percentile
from bench.run import parse_args
from bench.stacks import ReferenceApp
from services.topology import SERVICES


def result(rate: float, p99: float = 10.0, errors: int = 0) -> Result:
    return Result(
        requests=int(rate * 10),
        seconds=10.0,
        errors=errors,
        p50_ms=1.0,
        p90_ms=5.0,
        p99_ms=p99,
        max_ms=p99 * 2,
    )


def test_a_case_run_on_every_store_has_a_reference_run_on_every_store() -> None:
    for case in CASES:
        if case.reference is not None:
            reference = BY_NAME[case.reference]
            assert reference.store_bound or not case.store_bound, (
                f"{case.name}: no reference on a second store"
            )


def test_one_request_becomes_wrks_static_request() -> None:
    script = wrk.lua_script([wrk.Request(path="/healthz")])
    assert 'wrk.path = "/healthz"' in script
    assert "request = function" not in script


def test_several_requests_are_formatted_once_and_cycled() -> None:
    requests = [
        wrk.Request("POST", "/api/cart/items", (("Authorization", f"Bearer t{i}"),), '{"quantity": 1}')
        for i in range(3)
    ]
    script = wrk.lua_script(requests)
    assert script.count("wrk.format(") == 3
    assert '"Bearer t2"' in script and "request = function" in script


def test_a_wrk_summary_is_read_and_a_missing_one_is_an_error() -> None:
    line = (
        f'{wrk.MARK}{{"requests":1200,"duration_us":2000000,"connect":0,"read":1,"write":0,"status":2,'
        '"timeout":0,"p50_us":1500,"p90_us":3000,"p99_us":9000,"max_us":12000}'
    )
    found = wrk.parse(f"Running 2s test\n{line}\n")
    assert (found.rate, found.errors, found.p50_ms, found.p99_ms) == (600.0, 3, 1.5, 9.0)
    with pytest.raises(ValueError, match="no summary"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert math.isnan(percentile([], 0.5))
    journeys = from_latencies([30.0, 10.0, 20.0], seconds=2.0, errors=1)
    assert (journeys.requests, journeys.rate, journeys.p50_ms, journeys.max_ms) == (3, 1.5, 20.0, 30.0)


def test_rows_take_the_median_of_rounds_and_the_ratio_to_the_reference_of_the_same_run() -> None:
    measurements = [
        Measurement("memory", "abc", "product-list", 1, result(1000), cpu_seconds=5.0),
        Measurement("memory", "abc", "product-list", 2, result(1200), cpu_seconds=5.0),
        Measurement("memory", "abc", "frontend-api-products", 1, result(500), cpu_seconds=5.0),
        Measurement("memory", "abc", "frontend-api-products", 2, result(700), cpu_seconds=5.0),
        Measurement("memory", "old", "frontend-api-products", 1, result(330), cpu_seconds=5.0),
    ]
    rows = {(row.tree, row.case): row for row in summarize(measurements)}
    hop = rows[("abc", "frontend-api-products")]
    assert (hop.rate, hop.rate_low, hop.rate_high) == (600, 500, 700)
    assert hop.ratio == pytest.approx(600 / 1100)
    assert hop.cpu_ms == pytest.approx(1000 * 10 / 12000)
    # a tree without its own reference is compared with the reference measured on another tree
    assert rows[("old", "frontend-api-products")].ratio == pytest.approx(330 / 1100)
    assert "55% of product-list" in table(list(rows.values()))


def test_targets_are_judged_met_and_missed() -> None:
    measurements = [
        Measurement("memory", "abc", "bare", 1, result(1000), 1.0),
        Measurement("memory", "abc", "kit-healthz", 1, result(950), 1.0),
        Measurement("memory", "abc", "checkout-journey", 1, result(30, p99=400.0), 1.0),
    ]
    idle = {("memory", "abc"): {"product": 70.0, "frontend": 85.0, "database": 300.0}}
    lines = verdict_lines(verdicts(summarize(measurements), idle))
    assert "met    kit /healthz >= 90 % of bare: 95% (memory, abc)" in lines
    assert "MISSED checkout journey p99 <= 250 ms (shoppers thinking 1-3 s): 400 ms (memory, abc)" in lines
    assert "MISSED idle RSS <= 80 MB per service: 85 MB (memory, abc)" in lines  # the database is no service


def test_arguments_refuse_unknown_cases_and_stores() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--cases", "no-such-case"])
    with pytest.raises(SystemExit):
        parse_args(["--stores", "postgres"])
    smoke = parse_args(["--smoke"])
    assert (smoke.seconds, smoke.rounds, smoke.stores) == (1.0, 1, ["memory"])


@pytest.fixture(scope="module")
def reference_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = ReferenceApp(Path(tmp_path_factory.mktemp("reference")))
    app.start()
    try:
        yield app.url
    finally:
        app.stop()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make wrk installs it)")
def test_wrk_drives_the_reference_app_for_real(reference_app: str) -> None:
    found = wrk.run(reference_app, [wrk.Request(path="/healthz")], seconds=1, connections=2)
    assert found.errors == 0 and found.requests > 0  # a few on a machine loaded 25-fold, thousands when idle
    assert 0 < found.p50_ms <= found.p99_ms <= found.max_ms
    refused = wrk.run(reference_app, [wrk.Request(path="/no-such-path")], seconds=1, connections=1)
    assert refused.errors == refused.requests > 0  # wrk counts every non-2xx/3xx answer as an error


def test_a_service_started_past_its_memory_ceiling_is_a_failure() -> None:
    idle = {"frontend": 57.4, "auth": 55.6, "product": 58.9, "order": 60.0, "database": 300.0}
    assert over_ceiling(idle) == [
        "auth idle anonymous memory 55.6 MB is past its ceiling of 55.5 MB",
        "order idle anonymous memory 60.0 MB is past its ceiling of 59.5 MB",
    ]  # the database server is no service of the shop
    assert all(
        anon_ceiling_mb(name) == DEFAULT_ANON_CEILING_MB for name in SERVICES if name not in ANON_CEILING_MB
    )


def test_anonymous_memory_leaves_out_the_mapped_files() -> None:
    """RSS minus the file-backed pages: a process that maps and reads a 20 MB file grows in RSS, not in
    anonymous memory; one that allocates 20 MB grows in both."""
    script = (
        "import mmap, sys, tempfile, time\n"
        "f = tempfile.TemporaryFile(); f.write(b'x' * 20_000_000); f.flush()\n"
        "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); sum(m[i] for i in range(0, len(m), 4096))\n"
        "held = bytearray(b'y' * 20_000_000) if sys.argv[1] == 'allocate' else b''\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    sizes = {}
    for mode in ("map", "allocate"):
        child = subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            pids = {mode: child.pid}
            sizes[mode] = (usage.rss_mb(pids)[mode], usage.anon_mb(pids)[mode])
        finally:
            child.kill()
            child.wait()
    (map_rss, map_anon), (alloc_rss, alloc_anon) = sizes["map"], sizes["allocate"]
    assert map_rss - map_anon > 19  # the file's pages count in RSS only
    assert alloc_anon - map_anon > 19 and alloc_rss - map_rss > 19


def test_cpu_per_request_is_split_by_process() -> None:
    measurements = [
        Measurement("memory", "abc", "frontend-api-products", 1, result(500), 5.0, 0.0, {"frontend": 3.0}),
        Measurement("memory", "abc", "frontend-api-products", 2, result(700), 5.0, 0.0, {"frontend": 3.0}),
    ]
    measurements[0].cpu_by_process["product"] = 1.2
    (row,) = summarize(measurements)
    assert row.cpu_ms_by_process == pytest.approx({"frontend": 0.5, "product": 0.1})
    assert "| memory | abc | frontend-api-products | frontend 0.50, product 0.10 |" in process_table([row])
    assert "product 0.10" not in process_table([row], least_ms=0.2)


def test_thinking_shoppers_check_out_when_they_have_thought_not_all_when_the_run_ends() -> None:
    """Against a stand-in frontend: every checkout comes at least the shortest think time after the same
    shopper's add to cart, also for the shoppers still thinking when the run's time is up (they used to be
    cut short and all pay at that instant: a burst of checkouts no person makes, at the end of every
    round)."""
    from aiohttp import web

    from bench import shoppers

    arrivals: list[tuple[str, str, float]] = []

    async def answer(request: web.Request) -> web.Response:
        arrivals.append((request.path, request.headers["Authorization"], time.monotonic()))
        return web.json_response({}, status=201 if request.path == "/api/checkout" else 200)

    async def run() -> shoppers.JourneyOutcome:
        app = web.Application()
        app.router.add_post("/api/cart/items", answer)
        app.router.add_post("/api/checkout", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            stock = shoppers.Catalog({"mug": 1000})
            tokens = [f"shopper-{i}" for i in range(12)]
            return await shoppers.journeys(f"http://127.0.0.1:{port}", tokens, stock, 1.5, think=(0.4, 0.8))
        finally:
            await runner.cleanup()

    outcome = asyncio.run(run())
    added: dict[str, float] = {}
    waits = []
    for path, shopper, at in arrivals:
        if path == "/api/cart/items":
            added[shopper] = at
        else:
            waits.append(at - added.pop(shopper))
    assert outcome.result.requests == len(waits) >= 12
    assert not added  # every cart that was filled was paid for
    assert min(waits) >= 0.39, sorted(waits)[:5]


def test_add_to_cart_uses_only_the_products_with_stock_to_spare() -> None:
    from bench import shoppers

    catalog = shoppers.Catalog({"mug": 40, "kettle": 12, "beans": 15})
    for _ in range(6):  # the journeys buy evenly across the catalog
        catalog.take()
    assert catalog.stock == {"mug": 38, "kettle": 10, "beans": 13}
    assert catalog.plentiful(13) == ["beans", "mug"]
    assert catalog.plentiful(50) == []


def test_the_in_process_measure_calls_both_apps_and_reports_per_request_figures() -> None:
    from bench import in_process
    from services.product.app import build_app

    assert asyncio.run(in_process.call(build_app(), "/nope")) == 404  # the call reaches the app's routing
    figures = asyncio.run(in_process.measure(requests=50, rounds=2))
    assert set(figures) == {"bare", "kit"}
    assert all(len(values) == 2 and all(0 < v < 100_000 for v in values) for values in figures.values())
    assert logging.getLogger("kit.access").isEnabledFor(logging.INFO)  # the next tests still see their logs


def test_a_test_that_leaves_logging_switched_off_is_named() -> None:
    from tests.logging_state import logging_switched_off

    assert logging_switched_off() is None
    logging.disable(logging.INFO)  # planted
    problem = logging_switched_off()
    assert problem is not None and "left disabled up to level INFO" in problem
    assert logging.getLogger("kit.access").isEnabledFor(logging.INFO)  # and it is on again
