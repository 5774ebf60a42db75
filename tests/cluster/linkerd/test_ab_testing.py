"""ab-testing lab: Mobile UA -> mobile-optimized, x-user-group: beta -> beta-features, else stable (in that
order, as in the lesson: a beta tester on a phone gets the mobile variant)."""

from __future__ import annotations

import re

import pytest

from tests.cluster.linkerd.helpers import require_lab

pytestmark = pytest.mark.cluster
MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


@pytest.fixture(autouse=True)
def _ab_applied() -> None:
    require_lab("httproutes.gateway.networking.k8s.io", "frontend-ab", "ab-testing")


def variants(client, headers: dict[str, str], n: int = 20) -> set[str]:
    """The frontend variant named in the page body (<body class="variant-...">) of n requests."""
    hdrs = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
    page = f"curl -s --max-time 15 {hdrs} http://frontend/ | grep -o 'variant-[a-z-]*' | head -1"
    script = f"for i in $(seq {n}); do {page}; done"
    proc = client.sh(script)
    found = proc.stdout.split()
    assert len(found) == n, proc.stdout + proc.stderr
    return {re.sub("^variant-", "", v) for v in found}


def test_beta_group_gets_beta_features(l5d_client) -> None:
    assert variants(l5d_client("frontend-sa"), {"x-user-group": "beta"}) == {"beta-features"}


def test_mobile_user_agent_gets_mobile_optimized(l5d_client) -> None:
    assert variants(l5d_client("frontend-sa"), {"user-agent": MOBILE_UA}) == {"mobile-optimized"}


def test_everyone_else_gets_stable(l5d_client) -> None:
    assert variants(l5d_client("frontend-sa"), {"user-agent": "curl/8 desktop"}) == {"stable"}


def test_mobile_rule_comes_first_like_in_the_lesson(l5d_client) -> None:
    headers = {"x-user-group": "beta", "user-agent": MOBILE_UA}
    assert variants(l5d_client("frontend-sa"), headers) == {"mobile-optimized"}
