"""Lab ab-testing: the frontend variant follows the user agent and the user group.

make lab MESH=istio LAB=ab-testing && make verify MESH=istio LAB=ab-testing
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@pytest.fixture(autouse=True)
def _lab(require_lab: Any) -> None:
    require_lab("ab-testing")


def variants(shop_url: str, headers: dict[str, str], n: int = 20) -> Counter[str]:
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=shop_url, timeout=20) as http:
        for _ in range(n):
            r = http.get("/", headers=headers)
            assert r.status_code == 200
            match = re.search(r'<body class="variant-([a-z-]+)"', r.text)
            assert match, "the page shows its variant in <body class=...>"
            seen[match.group(1)] += 1
    return seen


def test_mobile_user_agents_get_mobile_optimized(shop_url: str) -> None:
    assert variants(shop_url, {"user-agent": IPHONE}) == {"mobile-optimized": 20}


def test_beta_group_gets_beta_features(shop_url: str) -> None:
    assert variants(shop_url, {"user-agent": DESKTOP, "x-user-group": "beta"}) == {"beta-features": 20}


def test_everyone_else_gets_stable(shop_url: str) -> None:
    assert variants(shop_url, {"user-agent": DESKTOP}) == {"stable": 20}
    assert variants(shop_url, {"user-agent": DESKTOP, "x-user-group": "gamma"}) == {"stable": 20}
