"""The chaos runner's judgement, with planted data: the audit finds every kind of money or stock error in
the databases, the report computes windows and recovery from the requests, a missed SLO fails the run
naming it, and every scenario file is complete. (The run itself: `make chaos-test`.)"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import mongomock
import pytest
from fastapi.testclient import TestClient

from chaos import audit as auditing
from chaos import fault_proxy, report, run, scenario
from chaos.run import finish, main

T0 = 1_000_000.0


def shop_db() -> Any:
    """A mongomock server with the three databases the audit reads, in a consistent state: one paid order
    (charged once, 2 units reserved) and a failed one (nothing charged, nothing reserved)."""
    client: Any = mongomock.MongoClient()
    client.product.products.insert_many([{"_id": "lamp", "stock": 8}, {"_id": "mug", "stock": 5}])
    client.product.reservations.insert_many(
        [
            {"_id": "o1", "status": "RESERVED", "items": [{"product_id": "lamp", "quantity": 2}]},
            {"_id": "o2", "status": "RELEASED", "items": [{"product_id": "mug", "quantity": 1}]},
        ]
    )
    client.order.orders.insert_many(
        [
            {"_id": "o1", "status": "paid", "user_id": "u1", "idempotency_key": "k1"},
            {"_id": "o2", "status": "failed", "user_id": "u1", "idempotency_key": "k2~o2"},
        ]
    )
    client.payment.payments.insert_one({"_id": "p1", "order_id": "o1", "status": "succeeded"})
    return client


def test_the_audit_of_a_consistent_shop_finds_nothing() -> None:
    client = shop_db()
    result = auditing.audit(client, auditing.snapshot(client), seen_paid={"o1"})
    assert result.findings == []
    assert (result.orders, result.orders_by_status) == (2, {"paid": 1, "failed": 1})


@pytest.mark.parametrize(
    ("plant", "counter"),
    [
        # A retry of purchase k1 (a new attempt keeps the key as k1~o3) charged again.
        (
            lambda c: (
                c.order.orders.insert_one(
                    {"_id": "o3", "status": "paid", "user_id": "u1", "idempotency_key": "k1~o3"}
                ),
                c.payment.payments.insert_one({"_id": "p3", "order_id": "o3", "status": "succeeded"}),
            ),
            "double_charges",
        ),
        (
            lambda c: c.payment.payments.insert_one({"_id": "p2", "order_id": "o2", "status": "succeeded"}),
            "charges_without_paid_order",
        ),
        (
            lambda c: c.order.orders.update_one({"_id": "o1"}, {"$set": {"status": "failed"}}),
            "paid_orders_lost",
        ),
        (
            lambda c: c.payment.payments.update_one({"_id": "p1"}, {"$set": {"status": "canceled"}}),
            "paid_orders_lost",
        ),
        (
            lambda c: c.product.reservations.update_one({"_id": "o2"}, {"$set": {"status": "RESERVED"}}),
            "leaked_reservations",
        ),
        (
            lambda c: c.product.reservations.insert_one({"_id": "o9", "status": "PENDING", "items": []}),
            "leaked_reservations",
        ),
        (lambda c: c.order.orders.update_one({"_id": "o2"}, {"$set": {"status": "reserved"}}), "open_orders"),
        (lambda c: c.order.orders.update_one({"_id": "o2"}, {"$set": {"undo_pending": True}}), "open_orders"),
        (lambda c: c.product.products.update_one({"_id": "mug"}, {"$inc": {"stock": -1}}), "stock_drift"),
    ],
)
def test_the_audit_finds_each_planted_error(plant: Any, counter: str) -> None:
    client = shop_db()
    before = auditing.snapshot(client)
    plant(client)
    result = auditing.audit(client, before, seen_paid={"o1"})
    assert getattr(result, counter) >= 1, result
    assert result.findings


def requests_with_an_outage(recover_after: float) -> list[report.Request]:
    """10 successful requests/s; a fault at 20-25 s fails everything until `recover_after` s after it."""
    requests = []
    for tenth in range(600):
        start = T0 + tenth / 10
        failing = T0 + 20 <= start < T0 + 25 + recover_after
        requests.append(
            report.Request(start, start + 0.05, "/api/products", 503 if failing else 200, not failing, "")
        )
    return requests


TIMELINE = report.Timeline(T0, T0 + 5, (report.FaultWindow("kill product", T0 + 20, T0 + 25),), T0 + 60)


def test_windows_and_recovery_come_from_the_requests() -> None:
    requests = requests_with_an_outage(recover_after=3)
    before, during, after = report.windows(requests, TIMELINE)
    assert before.success_rate == 1.0 and before.requests == 150  # ended before the fault, all spawned
    assert during.success_rate == 0.0 and during.requests == 50
    assert after.requests == 350 and after.success_rate == pytest.approx(320 / 350)  # 3 s slow to recover
    assert before.p95 == pytest.approx(50, abs=1)
    assert report.recovery_seconds(requests, TIMELINE, TIMELINE.faults[0]) == pytest.approx(3, abs=0.5)
    never = requests_with_an_outage(recover_after=100)
    assert report.recovery_seconds(never, TIMELINE, TIMELINE.faults[0]) is None


def test_a_fault_recovers_only_before_the_next_one_starts() -> None:
    """The next fault's failures are not this one's: recovery is searched until the next fault starts."""
    requests = requests_with_an_outage(recover_after=8)
    second = report.FaultWindow("kill order", T0 + 30, T0 + 31)
    overlapping = replace(TIMELINE, faults=(TIMELINE.faults[0], second))
    assert report.recovery_seconds(requests, overlapping, overlapping.faults[0]) is None
    assert report.recovery_seconds(requests, TIMELINE, TIMELINE.faults[0]) == pytest.approx(8, abs=0.5)


def test_the_run_waits_for_recovery_before_the_next_fault(tmp_path: Path) -> None:
    """The schedule holds the next fault back until the requests logged so far show the recovery."""
    shift = time.time() - (T0 + 60) - run.IN_FLIGHT_SECONDS  # the load ended as long ago as needed

    def logged(name: str, recover_after: float) -> Path:
        log = tmp_path / name
        lines = ["start,end,method,name,status,ok,order_id"] + [
            f"{r.start + shift},{r.end + shift},GET,{r.name},{r.status},{int(r.ok)},"
            for r in requests_with_an_outage(recover_after)
        ]
        log.write_text("\n".join(lines) + "\n")
        return log

    fault = report.FaultWindow("kill product", T0 + 20 + shift, T0 + 25 + shift)
    so_far = report.Timeline(T0 + shift, T0 + 5 + shift, (), T0 + 25 + shift)
    assert run.wait_recovered(logged("ok.csv", 3), so_far, fault, limit=1000) == pytest.approx(3, abs=0.5)
    assert run.wait_recovered(logged("never.csv", 100), so_far, fault, limit=0) is None


def a_scenario(**slo: float) -> scenario.Scenario:
    raw = {
        "description": "planted",
        "target": "local",
        "load": {"users": 1, "before": 15, "after": 35},
        "faults": [{"action": "kill", "service": "product"}],
        "slo": {
            **{name: 0 for name in scenario.SLO_NAMES},
            "success_rate_before": 0.99,
            "success_rate_after": 0.4,
            "p95_after_ms": 1000,
            "recovery_seconds": 15,
            **slo,
        },
    }
    return scenario.parse(raw, "planted")


def write_requests(out: Path, requests: list[report.Request]) -> None:
    lines = ["start,end,method,name,status,ok,order_id"]
    lines += [f"{r.start},{r.end},GET,{r.name},{r.status},{int(r.ok)},{r.order_id}" for r in requests]
    (out / "requests.csv").write_text("\n".join(lines) + "\n")


def test_a_missed_slo_fails_the_run_and_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_requests(tmp_path, requests_with_an_outage(recover_after=20))
    clean = auditing.Audit()
    assert finish(a_scenario(), tmp_path, TIMELINE, clean, {"when": "now"}) == 1
    err = capsys.readouterr().err
    assert "MISSED SLO: recovery_seconds (20, allowed <= 15)" in err
    text = (tmp_path / "report.md").read_text()
    assert "**MISSED**" in text and "MISSED recovery_seconds" in text
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    write_requests(tmp_path, requests_with_an_outage(recover_after=2))
    assert finish(a_scenario(), tmp_path, TIMELINE, clean, {}) == 0
    assert "all SLOs met" in (tmp_path / "report.md").read_text()

    dirty = auditing.Audit(double_charges=1, findings=["purchase k1 of user u1 charged 2 times"])
    assert finish(a_scenario(), tmp_path, TIMELINE, dirty, {}) == 1
    assert "double_charges" in capsys.readouterr().err
    assert finish(a_scenario(), tmp_path, TIMELINE, None, {}) == 1  # data not audited: not measured, a miss
    assert "not measured" in capsys.readouterr().err


def test_the_short_run_reports_latency_and_success_but_fails_on_data_and_recovery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make chaos-test (--short): a slow or flaky shared machine shows in the report, not as a red CI;
    a double charge or a slow recovery still fails it."""
    write_requests(tmp_path, requests_with_an_outage(recover_after=2))
    strict = a_scenario(p95_after_ms=10, success_rate_before=1.5)
    assert finish(strict, tmp_path, TIMELINE, auditing.Audit(), {}) == 1
    assert "p95_after_ms" in capsys.readouterr().err
    short = run.shorten(strict)
    assert short.reported_only == run.SHORT_REPORTED_ONLY
    assert finish(short, tmp_path, TIMELINE, auditing.Audit(), {}) == 0
    text = (tmp_path / "report.md").read_text()
    assert "all SLOs met" not in text and text.count("missed (reported only)") == 2
    assert finish(short, tmp_path, TIMELINE, auditing.Audit(double_charges=1), {}) == 1
    write_requests(tmp_path, requests_with_an_outage(recover_after=20))
    assert finish(short, tmp_path, TIMELINE, auditing.Audit(), {}) == 1
    assert "recovery_seconds (20, allowed <= 15)" in capsys.readouterr().err


def test_every_scenario_file_is_complete_and_names_real_files() -> None:
    names = scenario.names()
    assert {
        "kill-each-service",
        "database-down",
        "payment-failures",
        "payment-timeouts",
        "slow-product",
    } <= set(names)
    for name in names:
        loaded = scenario.load(name)
        assert set(loaded.slo) == set(scenario.SLO_NAMES) and loaded.description, name
        for fault in loaded.faults:
            for path in fault.files:
                assert (Path(scenario.HERE).parent.parent / path).exists(), (name, path)
            if fault.action == "proxy-fault":
                assert fault.service in loaded.proxies, name
    kill = scenario.load("kill-each-service")
    from scripts.dev import SERVICES

    assert [f.service for f in kill.faults] == [s.name for s in SERVICES]  # every service, once


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["slo"].pop("double_charges"), "missing ['double_charges']"),
        (lambda raw: raw["faults"].append({"action": "explode"}), "action must be one of"),
        (lambda raw: raw["faults"].append({"action": "kill"}), "needs service"),
        (lambda raw: raw.update(target="mars"), "target must be local or cluster"),
    ],
)
def test_a_malformed_scenario_is_refused_naming_the_field(change: Any, message: str) -> None:
    raw = {
        "description": "x",
        "target": "local",
        "load": {"users": 1, "before": 1, "after": 1},
        "faults": [{"action": "kill", "service": "order"}],
        "slo": dict.fromkeys(scenario.SLO_NAMES, 0),
    }
    change(raw)
    with pytest.raises(scenario.ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario.parse(raw, "planted")


def test_the_fault_proxy_forwards_or_injects_what_it_is_told() -> None:
    upstream = httpx.MockTransport(lambda request: httpx.Response(201, json={"path": request.url.path}))
    app = fault_proxy.build_app("http://payment", transport=upstream)
    with TestClient(app) as proxy:
        passed = proxy.post("/payments", json={"a": 1})
        assert passed.status_code == 201 and passed.json() == {"path": "/payments"}
        proxy.put("/_chaos/fault", json={"abort_percent": 100, "abort_status": 503})
        aborted = proxy.post("/payments", json={"a": 1})
        assert aborted.status_code == 503 and aborted.json()["error"]["code"] == "fault_injected"
        assert proxy.get("/_chaos/fault").json()["abort_percent"] == 100
        proxy.put("/_chaos/fault", json={})  # cleared
        assert proxy.post("/payments", json={}).status_code == 201


def test_cluster_scenarios_print_their_plan_with_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    """DRY_RUN=1: every kubectl command of the schedule, without a cluster or a shop to load."""
    assert main(["cluster-istio-faults", "--dry-run", "--mesh", "istio"]) == 0
    out = capsys.readouterr().out
    assert "-n ecommerce apply -f mesh/istio/labs/resilience/virtual-service-payment-faults.yaml" in out
    assert "-n ecommerce delete --ignore-not-found -f" in out
    assert "kubectl --context kind-shop -n ecommerce" in out  # the shop's cluster, not whatever is current
    assert main(["cluster-scale-to-zero", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.index("scale deployment/payment --replicas=0") < out.index(
        "scale deployment/payment --replicas=1"
    )
    assert main([]) == 0 and "kill-each-service" in capsys.readouterr().out  # no scenario: the list
    assert main(["no-such-scenario"]) == 2
