"""security lab: only real callers reach each API (403 otherwise), MongoDB only from database owners,
the frontend open to unauthenticated clients, kubelet probes still pass, the real call graph still works."""

from __future__ import annotations

import json

import pytest

from tests.cluster.helpers import NAMESPACE, checkout_once
from tests.cluster.linkerd.helpers import kubectl, require_lab

pytestmark = pytest.mark.cluster
JWKS = "http://auth:3000/.well-known/jwks.json"  # every service verifying tokens may GET it (architecture.md)


@pytest.fixture(autouse=True)
def _security_applied() -> None:
    require_lab("servers.policy.linkerd.io", "mongodb", "security")


def first(client, url: str):
    return client.requests(url, 1)[0]


def status(client, url: str) -> int:
    return first(client, url).status


# Every negative first proves, from the same pod, that an allowed call works (so a dead pod, a DNS error or a
# missing Service cannot pass it), then asserts the specific refusal: 403 made by the server's proxy (no
# x-served-by: the app never saw the request), or the TCP connection closed by it.


def test_payment_accepts_order_and_refuses_other_callers(l5d_client) -> None:
    assert status(l5d_client("order-sa"), "http://payment:3000/healthz") == 200
    shipping = l5d_client("shipping-sa")
    assert status(shipping, JWKS) == 200, "shipping's own allowed call (token verification keys) works"
    denied = first(shipping, "http://payment:3000/healthz")
    assert (denied.status, denied.served_by) == (403, ""), denied
    assert denied.proxy_error, f"payment's proxy says why to a meshed caller (l5d-proxy-error): {denied}"


def test_api_refuses_a_caller_without_mesh_identity(l5d_client) -> None:
    client = l5d_client("order-sa", meshed=False)
    # What is open to clients without identity answers this very pod: the frontend.
    assert status(client, "http://frontend/healthz") == 200
    # No proxy, no mTLS identity: payment's proxy refuses the plaintext request itself (403, no x-served-by).
    denied = first(client, "http://payment:3000/healthz")
    assert (denied.status, denied.served_by) == (403, ""), denied


def test_frontend_accepts_unauthenticated_clients(l5d_client) -> None:
    assert status(l5d_client("default", meshed=False), "http://frontend/healthz") == 200


def _mongo_http_probe(client) -> tuple[str, int]:
    """MongoDB answers plain HTTP on its port with a fixed text: it shows whether bytes got through.

    Returns curl's output and exit code: 52 (empty reply) or 56 (connection reset) when a proxy closed the
    connection; 6 (DNS), 7 (refused) and 28 (timeout) are other failures.
    """
    proc = client.sh('curl -sS --max-time 5 http://mongodb:27017/ 2>&1; echo " exit=$?"')
    out = proc.stdout.strip()
    return out, int(out.rsplit("exit=", 1)[1])


def test_mongodb_accepts_a_database_owner(l5d_client) -> None:
    out, code = _mongo_http_probe(l5d_client("order-sa"))
    assert "MongoDB" in out and code == 0, out


def test_mongodb_refuses_a_service_without_database(l5d_client) -> None:
    client = l5d_client("frontend-sa")
    assert status(client, "http://product:3000/healthz") == 200, "frontend's own allowed call works"
    out, code = _mongo_http_probe(client)
    # The Server on 27017 is opaque: a TCP denial closes the connection (no 403 in TCP).
    assert "MongoDB" not in out and code in (52, 56), out


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
