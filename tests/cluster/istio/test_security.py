"""Lab security: STRICT mTLS, least-privilege AuthorizationPolicies, MongoDB for data owners only,
JWT required on the order API.

make lab MESH=istio LAB=security && make verify MESH=istio LAB=security
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cluster.helpers import checkout_once, register_and_login
from tests.cluster.istio.helpers import require_lab

PRODUCTS = "http://product:3000/products"
ORDERS = "http://order:3000/orders"


@pytest.fixture(autouse=True)
def _lab(custom_objects: Any, namespace: str) -> None:
    require_lab(custom_objects, namespace, "security")


def test_plaintext_from_a_pod_without_sidecar_is_refused(mesh_pod: Any) -> None:
    plain = mesh_pod("frontend-sa", sidecar=False).http(PRODUCTS)[0]
    assert plain["status"] == 0, f"STRICT mTLS must reset a plaintext connection, got {plain}"
    meshed = mesh_pod("frontend-sa").http(PRODUCTS)[0]
    assert meshed["status"] == 200, "the same call with a sidecar (mTLS, allowed caller) works"


def test_caller_that_is_not_allowed_gets_403(mesh_pod: Any) -> None:
    r = mesh_pod("notification-sa").http("http://payment:3000/payments", method="POST", body={})[0]
    assert (r["status"], r["body"]) == (403, "RBAC: access denied")
    r = mesh_pod("order-sa").http("http://frontend/")[0]
    assert (r["status"], r["body"]) == (403, "RBAC: access denied"), "frontend only from the ingress gateway"


def test_allowed_method_and_path_only(mesh_pod: Any) -> None:
    pod = mesh_pod("frontend-sa")
    assert pod.http(PRODUCTS)[0]["status"] == 200
    r = pod.http(PRODUCTS, method="DELETE")[0]
    assert (r["status"], r["body"]) == (403, "RBAC: access denied")


def test_mongodb_only_for_services_that_own_a_database(mesh_pod: Any) -> None:
    assert mesh_pod("order-sa").mongo_hello()["reply"] is True
    denied = mesh_pod("frontend-sa").mongo_hello()
    assert denied["reply"] is False, "a TCP denial closes the connection (no 403 in TCP)"


def test_order_api_needs_a_valid_jwt(mesh_pod: Any, shop_url: str) -> None:
    pod = mesh_pod("frontend-sa")
    missing = pod.http(ORDERS)[0]
    assert (missing["status"], missing["body"]) == (403, "RBAC: access denied")
    forged = pod.http(ORDERS, headers={"authorization": "Bearer not.a.jwt"})[0]
    assert forged["status"] == 401, forged
    # a real token from the shop's login (through the gateway) is accepted by the sidecar
    with httpx.Client(base_url=shop_url, timeout=20) as http:
        token = register_and_login(http)
    ok = pod.http(ORDERS, headers={"authorization": f"Bearer {token}"})[0]
    assert ok["status"] == 200, ok


def test_shop_still_works_end_to_end(shop_http: Any) -> None:
    order = checkout_once(shop_http)
    assert order.get("id")
