"""security lab: only real callers reach each API (403 otherwise), MongoDB only from database owners,
the frontend open to unauthenticated clients, kubelet probes still pass, the real call graph still works."""

from __future__ import annotations

import json

import pytest

from tests.cluster.helpers import NAMESPACE, checkout_once
from tests.cluster.linkerd.helpers import kubectl, require_lab

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _security_applied() -> None:
    require_lab("servers.policy.linkerd.io", "mongodb", "security")


def status(client, url: str) -> int:
    return client.requests(url, 1)[0].status


def test_payment_accepts_order_and_refuses_other_callers(l5d_client) -> None:
    assert status(l5d_client("order-sa"), "http://payment:3000/healthz") == 200
    assert status(l5d_client("shipping-sa"), "http://payment:3000/healthz") == 403


def test_api_refuses_a_caller_without_mesh_identity(l5d_client) -> None:
    # No proxy, no mTLS identity: the server's proxy refuses the plaintext request.
    assert status(l5d_client("order-sa", meshed=False), "http://payment:3000/healthz") != 200


def test_frontend_accepts_unauthenticated_clients(l5d_client) -> None:
    assert status(l5d_client("default", meshed=False), "http://frontend/healthz") == 200


def _mongo_http_probe(client) -> str:
    """MongoDB answers plain HTTP on its port with a fixed text: it shows whether bytes got through."""
    proc = client.sh('curl -sS --max-time 5 http://mongodb:27017/ 2>&1; echo " exit=$?"')
    return proc.stdout


def test_mongodb_accepts_a_database_owner(l5d_client) -> None:
    out = _mongo_http_probe(l5d_client("order-sa"))
    assert "MongoDB" in out and "exit=0" in out, out


def test_mongodb_refuses_a_service_without_database(l5d_client) -> None:
    out = _mongo_http_probe(l5d_client("frontend-sa"))
    assert "MongoDB" not in out and "exit=0" not in out, out


def test_probes_still_pass_every_shop_pod_is_ready() -> None:
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-l", "app", "-o", "json"))["items"]
    shop = [
        p
        for p in pods
        if p["metadata"]["labels"]["app"] != "curl-test"
        and p["metadata"]["labels"].get("version") not in (None, "broken")  # test pods of test_resilience
        and not p["metadata"].get("deletionTimestamp")
    ]
    assert shop
    for pod in shop:
        ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}.get("Ready")
        assert ready == "True", f"{pod['metadata']['name']} is not Ready (probes blocked by policy?)"


def test_shop_still_works_end_to_end(shop_http) -> None:
    # Every caller the policies allow (docs/architecture.md, "Who calls whom") takes part in one checkout:
    # NodePort -> frontend (unauthenticated) -> the APIs -> order -> product gRPC, payment, ..., MongoDB.
    order = checkout_once(shop_http)
    assert order["status"] == "paid" and order["payment_id"], order
