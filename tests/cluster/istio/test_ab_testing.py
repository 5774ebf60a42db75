"""Lab ab-testing: the frontend variant follows the user agent and the user group.

make lab MESH=istio LAB=ab-testing && make verify MESH=istio LAB=ab-testing
Every request enters at the ingress gateway (http://localhost) with the Host a browser sends.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.cluster.istio.helpers import require_lab

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@pytest.fixture(autouse=True)
def _lab(custom_objects: Any, namespace: str) -> None:
    require_lab(custom_objects, namespace, "ab-testing")


def variants(shop_url: str, headers: dict[str, str], n: int = 20, http: Any = None) -> Counter[str]:
    """The variants that answered n page loads (through `http`, e.g. with session cookies, if given)."""
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=shop_url, timeout=20) as fresh:
        client = http or fresh
        for _ in range(n):
            r = client.get("/", headers=headers)
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


def test_beta_cookie_gets_beta_features(shop_url: str) -> None:
    """The cookie the frontend sets after login (browsers never send x-user-group themselves)."""
    headers = {"user-agent": DESKTOP, "cookie": "shop_group=beta"}
    assert variants(shop_url, headers) == {"beta-features": 20}
    headers = {"user-agent": DESKTOP, "cookie": "shop_group=customer"}
    assert variants(shop_url, headers) == {"stable": 20}


def test_a_beta_tester_who_logs_in_gets_beta_features(shop_url: str) -> None:
    """The browser's path end to end: register as beta tester, log in, the session's cookie routes."""
    with httpx.Client(base_url=shop_url, timeout=20, headers={"user-agent": DESKTOP}) as http:
        email = f"beta-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        r = http.post(
            "/api/register", json={"email": email, "password": password, "name": "Beta", "beta_tester": True}
        )
        assert r.status_code == 201, f"register: {r.status_code} {r.text}"
        r = http.post("/api/login", json={"email": email, "password": password})
        assert r.status_code == 200, f"login: {r.status_code} {r.text}"
        assert http.cookies.get("shop_group") == "beta", "the frontend sets the readable group cookie"
        assert variants(shop_url, {}, http=http) == {"beta-features": 20}
