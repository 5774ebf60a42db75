"""`make mesh MESH=none` after Istio: whatever Istio installed is gone (namespace, CRDs, webhooks, cluster
roles, labels, sidecars), and the shop is exactly the plain overlay again."""

from __future__ import annotations

from tests.sim.helpers import ensure_shop, items, make, plain_overlay_differences


def istio_leftovers() -> list[str]:
    found = [
        f"namespace {n['metadata']['name']}" for n in items("namespaces") if "istio" in n["metadata"]["name"]
    ]
    found += [
        f"CRD {c['metadata']['name']}" for c in items("crds") if c["spec"]["group"].endswith("istio.io")
    ]
    for kind in (
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "clusterroles",
        "clusterrolebindings",
    ):
        found += [f"{kind} {o['metadata']['name']}" for o in items(kind) if "istio" in o["metadata"]["name"]]
    for pod in items("-n", "ecommerce", "pods"):
        names = [c["name"] for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])]
        if "istio-proxy" in names and not pod["metadata"].get("deletionTimestamp"):
            found.append(f"pod {pod['metadata']['name']} still has istio-proxy")
    for obj in items("-n", "ecommerce", "configmaps,secrets,serviceaccounts"):
        if "istio" in obj["metadata"]["name"]:
            found.append(f"{obj['kind']} ecommerce/{obj['metadata']['name']}")
    return found


def test_make_mesh_none_after_istio_leaves_nothing_of_istio() -> None:
    ensure_shop("istio")
    make("lab", "LAB=egress", "MESH=istio")  # a lab still on when the student switches: its namespace too
    make("mesh", "MESH=none")
    assert istio_leftovers() == []
    assert [
        n["metadata"]["name"] for n in items("namespaces") if n["metadata"]["name"] == "payments-provider"
    ] == []
    assert plain_overlay_differences("none") == []
