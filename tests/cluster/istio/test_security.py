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


# Every negative first proves, from the same pod, that an allowed call works (so a dead pod, a DNS error or a
# missing Service cannot pass it), then asserts the specific refusal: 403 "RBAC: access denied" from the
# server's sidecar, 401 from its JWT filter, or the connection reset by it.
RESET = ("RemoteDisconnected", "ConnectionResetError")  # probe.py's error for a connection closed on it
JWKS = "http://auth:3000/.well-known/jwks.json"  # every service verifying tokens may GET it (architecture.md)
GATEWAY = "http://istio-ingressgateway.istio-system/healthz"  # plaintext is fine outside the shop's namespace


def test_plaintext_from_a_pod_without_sidecar_is_refused(mesh_pod: Any) -> None:
    plain_pod = mesh_pod("frontend-sa", sidecar=False)
    via_gateway = plain_pod.http(GATEWAY)[0]
    assert via_gateway["status"] == 200, (
        f"the pod without sidecar reaches the shop through the gateway: {via_gateway}"
    )
    plain = plain_pod.http(PRODUCTS)[0]
    assert plain["status"] == 0 and plain["error"].startswith(RESET), (
        f"STRICT mTLS must reset a plaintext connection, got {plain}"
    )
    meshed = mesh_pod("frontend-sa").http(PRODUCTS)[0]
    assert meshed["status"] == 200, "the same call with a sidecar (mTLS, allowed caller) works"


def test_caller_that_is_not_allowed_gets_403(mesh_pod: Any) -> None:
    notification = mesh_pod("notification-sa")
    assert notification.http(JWKS)[0]["status"] == 200, "notification's own allowed call works"
    r = notification.http("http://payment:3000/payments", method="POST", body={})[0]
    assert (r["status"], r["body"], r["served_by"]) == (403, "RBAC: access denied", "")
    order = mesh_pod("order-sa")
    assert order.http(JWKS)[0]["status"] == 200, "order's own allowed call works"
    r = order.http("http://frontend/")[0]
    assert (r["status"], r["body"]) == (403, "RBAC: access denied"), "frontend only from the ingress gateway"


def test_a_method_not_allowed_is_denied(mesh_pod: Any) -> None:
    pod = mesh_pod("frontend-sa")
    assert pod.http(PRODUCTS)[0]["status"] == 200
    r = pod.http(PRODUCTS, method="DELETE")[0]
    assert (r["status"], r["body"], r["served_by"]) == (403, "RBAC: access denied", "")


def test_mongodb_only_for_services_that_own_a_database(mesh_pod: Any) -> None:
    assert mesh_pod("order-sa").mongo_hello()["reply"] is True
    frontend = mesh_pod("frontend-sa")
    assert frontend.http(PRODUCTS)[0]["status"] == 200, "frontend's own allowed call works"
    denied = frontend.mongo_hello()
    # a TCP denial closes the connection (no 403 in TCP); a DNS error or a timeout would be another failure
    assert denied["reply"] is False and denied["error"].startswith(("connection closed", *RESET)), denied


def test_order_api_refuses_a_missing_or_forged_jwt(mesh_pod: Any, shop_url: str) -> None:
    pod = mesh_pod("frontend-sa")
    # the allowed path first: a real token from the shop's login (through the gateway) is accepted
    with httpx.Client(base_url=shop_url, timeout=20) as http:
        token = register_and_login(http)
    ok = pod.http(ORDERS, headers={"authorization": f"Bearer {token}"})[0]
    assert ok["status"] == 200, ok
    missing = pod.http(ORDERS)[0]
    assert (missing["status"], missing["body"], missing["served_by"]) == (403, "RBAC: access denied", "")
    forged = pod.http(ORDERS, headers={"authorization": "Bearer not.a.jwt"})[0]
    assert forged["status"] == 401 and "Jwt" in forged["body"] and forged["served_by"] == "", forged


def test_shop_still_works_end_to_end(shop_http: Any) -> None:
    order = checkout_once(shop_http)
    assert order.get("id")
