"""Lab resilience: fault injection, retries, circuit-breaker overflow and outlier ejection, measured.

make lab MESH=istio LAB=resilience && make verify MESH=istio LAB=resilience
The checks call as the real callers (order-sa -> payment, frontend-sa -> user), so they also pass
with lab security applied. Retries and ejections are read from the CALLING sidecar's Envoy stats.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.cluster.helpers import binomial_bounds
from tests.cluster.istio.helpers import require_lab

PAYMENT = "http://payment:3000/payments/istio-check"
USER = "http://user:3000/users/me"
PAYMENT_CLUSTER = "outbound|3000||payment.ecommerce.svc.cluster.local"
USER_CLUSTER = "outbound|3000||user.ecommerce.svc.cluster.local"


@pytest.fixture(autouse=True)
def _lab(custom_objects: Any, namespace: str) -> None:
    require_lab(custom_objects, namespace, "resilience")


def stat(pod: Any, cluster: str, name: str) -> int:
    return sum(v for k, v in pod.envoy_stats(cluster).items() if k.endswith(f".{name}"))


def test_delay_hits_about_10_percent_and_lasts_at_least_5s(mesh_pod: Any) -> None:
    n = 100
    results = mesh_pod("order-sa").http(
        PAYMENT, count=n, concurrency=10, headers={"x-user-group": "chaos-delay"}
    )
    delayed = [r for r in results if r["seconds"] >= 5.0]
    low, high = binomial_bounds(n, 0.10)
    assert max(low, 1) <= len(delayed) <= high, (
        f"{len(delayed)} of {n} delayed; the lesson's 0.1 would give ~0"
    )
    assert all(r["seconds"] < 4.0 for r in results if r not in delayed), "only the injected requests are slow"


def test_abort_answers_503_for_about_half(mesh_pod: Any) -> None:
    n = 100
    results = mesh_pod("order-sa").http(
        PAYMENT, count=n, concurrency=10, headers={"x-user-group": "chaos-abort"}
    )
    aborted = [r for r in results if r["status"] == 503]
    low, high = binomial_bounds(n, 0.50)
    assert low <= len(aborted) <= high, Counter(r["status"] for r in results)
    assert all(r["body"] == "fault filter abort" for r in aborted)
    assert all(r["served_by"] == "" for r in aborted), "an aborted request never reaches payment"


def test_retries_hide_a_failing_user_endpoint(mesh_pod: Any, broken_endpoint: Any) -> None:
    pod = mesh_pod("frontend-sa")
    broken_endpoint("user")
    before = stat(pod, USER_CLUSTER, "upstream_rq_retry")
    results = pod.http(USER, count=60, concurrency=4)
    statuses = Counter(r["status"] for r in results)
    assert 503 not in statuses, f"every 503 of the broken endpoint should have been retried: {statuses}"
    assert all(r["served_by"].startswith("user/") for r in results)
    assert stat(pod, USER_CLUSTER, "upstream_rq_retry") - before > 0


def test_posts_to_user_are_not_retried_on_a_503(mesh_pod: Any, broken_endpoint: Any) -> None:
    """POST /users/me/addresses is not idempotent: its route retries only unsent requests."""
    pod = mesh_pod("frontend-sa")
    broken_endpoint("user")
    results = pod.http(f"{USER}/addresses", count=40, concurrency=4, method="POST", body={})
    broken = [r for r in results if r["served_by"] == "broken/v0"]
    assert broken and all(r["status"] == 503 for r in broken), Counter(r["served_by"] for r in results)


def test_connection_pool_overflow_gives_503_uo(mesh_pod: Any) -> None:
    pod = mesh_pod("order-sa")
    results = pod.http(PAYMENT, count=400, concurrency=60)
    overflow = [r for r in results if r["status"] == 503 and "overflow" in r["body"]]
    assert overflow, Counter(r["status"] for r in results)
    assert stat(pod, PAYMENT_CLUSTER, "upstream_rq_pending_overflow") >= len(overflow)
    assert " UO " in pod.proxy_log(), "the sidecar's access log marks them with response flag UO"


def test_failing_endpoint_is_ejected(mesh_pod: Any, broken_endpoint: Any) -> None:
    pod = mesh_pod("order-sa")
    broken_endpoint("payment")
    first = pod.http(PAYMENT, count=30, concurrency=1)
    assert any(r["served_by"] == "broken/v0" for r in first), (
        "the broken endpoint got traffic before ejection"
    )
    assert stat(pod, PAYMENT_CLUSTER, "outlier_detection.ejections_enforced_total") >= 1
    after = pod.http(PAYMENT, count=30, concurrency=1)
    assert not any(r["served_by"] == "broken/v0" for r in after), "ejected for baseEjectionTime (30 s)"
