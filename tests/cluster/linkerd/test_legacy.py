"""legacy lab: the lesson's TrafficSplit works through linkerd-smi (which writes a ServiceProfile)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.cluster.helpers import binomial_ok
from tests.cluster.linkerd.helpers import kubectl, require_lab

pytestmark = pytest.mark.cluster
N = 600


@pytest.fixture(autouse=True)
def _legacy_applied() -> None:
    require_lab("trafficsplits.split.smi-spec.io", "product-split", "legacy")


def test_smi_adaptor_turned_the_trafficsplit_into_a_serviceprofile() -> None:
    sp = require_lab("serviceprofiles.linkerd.io", "product.ecommerce.svc.cluster.local", "legacy")
    overrides = {o["authority"].split(".")[0]: o["weight"] for o in sp["spec"].get("dstOverrides", [])}
    assert set(overrides) == {"product-stable", "product-canary"}, overrides


def test_fixed_user_serviceprofile_is_served() -> None:
    out = kubectl("-n", "ecommerce", "get", "serviceprofiles.linkerd.io", "user.ecommerce.svc.cluster.local")
    assert "user.ecommerce.svc.cluster.local" in out


@pytest.mark.timeout(900)
def test_trafficsplit_sends_the_canary_its_weight(l5d_client) -> None:
    ts = require_lab("trafficsplits.split.smi-spec.io", "product-split", "legacy")
    weights = {b["service"]: int(b["weight"]) for b in ts["spec"]["backends"]}
    share = weights.get("product-canary", 0) / sum(weights.values())
    replies = l5d_client("frontend-sa").requests("http://product:3000/healthz", N)
    counts = Counter(r.served_by for r in replies if r.status == 200)
    assert sum(counts.values()) == N, counts
    assert binomial_ok(counts["product/v2"], N, share), (
        f"canary got {counts['product/v2']}/{N}, not ~{share:.0%}"
    )
