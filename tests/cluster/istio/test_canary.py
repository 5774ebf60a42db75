"""Lab canary: product v2 gets its weight of the traffic; header or cookie give 100 % canary.

make lab MESH=istio LAB=canary && make verify MESH=istio LAB=canary
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.cluster.helpers import binomial_bounds
from tests.cluster.istio.helpers import require_lab

PRODUCT = "http://product:3000/products"
N = 500


@pytest.fixture(autouse=True)
def _lab(custom_objects: Any, namespace: str) -> None:
    require_lab(custom_objects, namespace, "canary")


def canary_weight(custom_objects: Any, namespace: str) -> int:
    """The weight of subset canary in the split route as applied (10, or 5 after the 95/5 step)."""
    vs = custom_objects.get_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", "product"
    )
    split = next(r for r in vs["spec"]["http"] if r.get("name") == "split")
    return int(next(d["weight"] for d in split["route"] if d["destination"]["subset"] == "canary"))


def test_split_within_binomial_tolerance(mesh_pod: Any, custom_objects: Any, namespace: str) -> None:
    weight = canary_weight(custom_objects, namespace)
    pod = mesh_pod("frontend-sa")
    results = pod.http(PRODUCT, count=N, concurrency=8)
    assert all(r["status"] == 200 for r in results), Counter((r["status"], r["error"]) for r in results)
    served = Counter(r["served_by"] for r in results)
    assert set(served) <= {"product/v1", "product/v2"}, served
    low, high = binomial_bounds(N, weight / 100)
    assert low <= served["product/v2"] <= high, (
        f"{served} for weight {weight} %: expected v2 in [{low:.0f}, {high:.0f}]"
    )


@pytest.mark.parametrize(
    "headers", [{"canary": "true"}, {"cookie": "session=abc; canary=true"}], ids=["header", "cookie"]
)
def test_header_and_cookie_always_get_the_canary(mesh_pod: Any, headers: dict[str, str]) -> None:
    results = mesh_pod("frontend-sa").http(PRODUCT, count=50, concurrency=5, headers=headers)
    assert Counter(r["served_by"] for r in results) == {"product/v2": 50}


def test_a_cookie_that_only_contains_the_word_stays_on_the_split(mesh_pod: Any) -> None:
    results = mesh_pod("frontend-sa").http(
        PRODUCT, count=60, concurrency=6, headers={"cookie": "nocanary=true"}
    )
    assert Counter(r["served_by"] for r in results)["product/v1"] > 30


def test_canary_header_through_the_gateway_reaches_v2(shop_url: str) -> None:
    """Entering at the gateway: the frontend forwards `canary`, its sidecar applies the product route."""
    for _ in range(10):
        r = httpx.get(f"{shop_url}/", headers={"canary": "true"}, timeout=20)
        assert r.status_code == 200
        assert "product/v2" in r.text, "the catalog banner should say it was served by product/v2"


def test_gateway_host_product_gets_the_same_split(shop_url: str) -> None:
    host = "product.ecommerce.svc.cluster.local"
    r = httpx.get(f"{shop_url}/products", headers={"host": host, "canary": "true"}, timeout=20)
    if r.status_code == 403:
        pytest.skip("lab security is applied: only the frontend may be called from the gateway")
    assert r.status_code == 200 and r.headers["x-served-by"] == "product/v2"
