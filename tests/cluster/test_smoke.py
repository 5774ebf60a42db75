"""Live smoke tests of the shop on kind (`make verify`, MESH=none or any mesh). Skipped without a cluster."""

from __future__ import annotations

from typing import Any

import httpx

from services import topology
from tests.cluster.helpers import NAMESPACE, checkout_once

SERVICES = list(topology.SERVICES)
VARIANTS = ["product-canary", "frontend-mobile-optimized", "frontend-beta-features"]


def test_every_workload_is_rolled_out(apps_v1: Any) -> None:
    deployments = {d.metadata.name: d for d in apps_v1.list_namespaced_deployment(NAMESPACE).items}
    assert set(SERVICES + VARIANTS) <= set(deployments), sorted(deployments)
    for name in SERVICES + VARIANTS:
        status = deployments[name].status
        assert (status.available_replicas or 0) >= 1, f"deployment {name} has no available replica"
        assert status.updated_replicas == deployments[name].spec.replicas, f"deployment {name} still rolling"
    mongodb = apps_v1.read_namespaced_stateful_set("mongodb", NAMESPACE)
    assert mongodb.status.ready_replicas == 1


def test_all_pods_ready(core_v1: Any) -> None:
    pods = core_v1.list_namespaced_pod(NAMESPACE, label_selector="app").items
    apps = {p.metadata.labels["app"] for p in pods}
    assert set(SERVICES) | {"mongodb"} <= apps
    not_ready = [
        p.metadata.name
        for p in pods
        if p.metadata.labels["app"] != "curl-test"
        and not (p.status.phase == "Running" and all(c.ready for c in p.status.container_statuses or []))
    ]
    assert not_ready == [], f"pods not ready: {not_ready}"


def test_shop_is_reachable_through_the_kind_entry_point(shop_url: str) -> None:
    r = httpx.get(f"{shop_url}/", timeout=10)
    assert r.status_code == 200
    assert r.headers.get("x-served-by", "").startswith("frontend/")
    assert "text/html" in r.headers.get("content-type", "")


def test_one_checkout_succeeds(shop_http: httpx.Client) -> None:
    order = checkout_once(shop_http)
    assert order["status"] == "paid"
    assert order["id"] and order["payment_id"]
    r = shop_http.get(f"/api/orders/{order['id']}")
    assert r.status_code == 200 and r.json()["id"] == order["id"]
