"""canary lab: the 90/10 split (or the weights a student applied) of product traffic by the caller's proxy;
`canary: true` and the cookie `canary=true` always to v2."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.cluster.helpers import binomial_ok
from tests.cluster.linkerd.helpers import require_lab

pytestmark = pytest.mark.cluster
N = 600


@pytest.fixture(autouse=True)
def route() -> dict:
    return require_lab("httproutes.gateway.networking.k8s.io", "product-canary", "canary")


def canary_share(route: dict) -> float:
    """The canary's share in the rule without header matches, as APPLIED (10 %, or what a student set).

    The API server gives a rule without matches the default match `PathPrefix /`, so look for no headers.
    """
    (split,) = [r for r in route["spec"]["rules"] if not any(m.get("headers") for m in r.get("matches", []))]
    weights = {b["name"]: b.get("weight", 1) for b in split["backendRefs"]}
    return weights.get("product-canary", 0) / sum(weights.values())


@pytest.mark.timeout(900)
def test_split_is_within_binomial_tolerance_of_the_applied_weights(l5d_client, route) -> None:
    share = canary_share(route)
    replies = l5d_client("frontend-sa").requests("http://product:3000/healthz", N)
    counts = Counter(r.served_by for r in replies if r.status == 200)
    assert sum(counts.values()) == N, counts
    assert set(counts) <= {"product/v1", "product/v2"}, counts
    assert binomial_ok(counts["product/v2"], N, share), (
        f"canary got {counts['product/v2']}/{N}, expected ~{share:.0%}"
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
