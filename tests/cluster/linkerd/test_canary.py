"""canary lab: 90/10 split of product traffic by the caller's proxy, and `canary: true` always to v2."""

from __future__ import annotations

from collections import Counter

import pytest
from l5d import binomial_ok, require_lab

pytestmark = pytest.mark.cluster
N = 600


@pytest.fixture(autouse=True)
def _canary_applied() -> None:
    require_lab("httproutes.gateway.networking.k8s.io", "product-canary", "canary")


@pytest.mark.timeout(900)
def test_split_is_90_10_within_binomial_tolerance(l5d_client) -> None:
    replies = l5d_client("frontend-sa").requests("http://product:3000/healthz", N)
    counts = Counter(r.served_by for r in replies if r.status == 200)
    assert sum(counts.values()) == N, counts
    assert set(counts) <= {"product/v1", "product/v2"}, counts
    assert binomial_ok(counts["product/v2"], N, 0.10), (
        f"canary got {counts['product/v2']}/{N}, expected ~10 %"
    )


def test_canary_header_always_reaches_v2(l5d_client) -> None:
    replies = l5d_client("frontend-sa").requests(
        "http://product:3000/healthz", 50, headers={"canary": "true"}
    )
    assert {(r.status, r.served_by) for r in replies} == {(200, "product/v2")}


def test_canary_cookie_always_reaches_v2(l5d_client) -> None:
    # The cookie the footer's "Try the canary build" sets; the frontend passes it on to product.
    replies = l5d_client("frontend-sa").requests(
        "http://product:3000/healthz", 50, headers={"cookie": "session=x; canary=true"}
    )
    assert {(r.status, r.served_by) for r in replies} == {(200, "product/v2")}
