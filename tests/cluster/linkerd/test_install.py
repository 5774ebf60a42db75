"""Linkerd itself: control plane and viz healthy, every shop pod meshed, every edge mutually authenticated."""

from __future__ import annotations

import json

import pytest
from l5d import NAMESPACE, kubectl, linkerd

pytestmark = pytest.mark.cluster


def test_linkerd_check_passes() -> None:
    for args in (["check"], ["viz", "check"], ["check", "--proxy", "-n", NAMESPACE]):
        proc = linkerd(*args)
        assert proc.returncode == 0, f"linkerd {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


def test_every_shop_pod_runs_a_linkerd_proxy() -> None:
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-o", "json"))["items"]
    shop = [
        p
        for p in pods
        if p["metadata"].get("labels", {}).get("app") not in (None, "curl-test")
        and not p["metadata"].get("deletionTimestamp")
    ]
    assert shop, "no shop pods found"
    for pod in shop:
        containers = pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
        names = {c["name"] for c in containers}
        assert "linkerd-proxy" in names, f"{pod['metadata']['name']} has no linkerd-proxy ({sorted(names)})"


def test_every_edge_between_shop_workloads_is_secured(l5d_client) -> None:
    # Real traffic first: a meshed client browses the shop, so frontend -> product/auth edges exist.
    client = l5d_client("frontend-sa")
    replies = client.requests("http://frontend/", 20)
    assert all(r.status == 200 for r in replies), [r.status for r in replies]
    client.metrics_settle()
    proc = linkerd("viz", "edges", "deployment", "-n", NAMESPACE, "-o", "json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    edges = [
        e
        for e in json.loads(proc.stdout)
        if e["src_namespace"] == NAMESPACE and e["dst_namespace"] == NAMESPACE
    ]
    assert edges, "viz edges shows no edge inside the shop"
    for edge in edges:
        assert edge["no_tls_reason"] == "", (
            f"{edge['src']} -> {edge['dst']} not secured: {edge['no_tls_reason']}"
        )
        # Identities are ServiceAccounts: <name>-sa.ecommerce (viz shortens the full SPIFFE-like name).
        assert edge["client_id"].endswith(f"-sa.{NAMESPACE}"), edge
        assert edge["server_id"].endswith(f"-sa.{NAMESPACE}"), edge
