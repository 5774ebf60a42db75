"""`make mesh MESH=none` after Istio: whatever Istio installed is gone (namespace, CRDs, webhooks, cluster
roles, labels, sidecars), and the shop is exactly the plain overlay again."""

from __future__ import annotations

from tests.sim.helpers import ensure_shop, get_json, items, make, plain_overlay_differences


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


def test_make_up_with_istio_over_the_running_shop_switches_it_like_make_mesh() -> None:
    """A student who ran `make up` and then follows the Istio guide's `make up MESH=istio`: the frontend gives
    NodePort 30080 back to Istio's ingress gateway (two Services cannot hold it: the API server refuses the
    gateway's Service), Istio is installed, and every pod restarts with its sidecar."""
    ensure_shop("none")
    assert get_json("-n", "ecommerce", "service", "frontend")["spec"]["type"] == "NodePort"
    result = make("up", "MESH=istio")
    assert "the shop runs on mesh none: switching it to istio" in result.output, result.tail()
    assert "every pod in ecommerce has an istio-proxy sidecar" in result.output, result.tail()
    gateway = get_json("-n", "istio-system", "service", "istio-ingressgateway")
    assert 30080 in [p.get("nodePort") for p in gateway["spec"]["ports"]]
    assert plain_overlay_differences("istio") == []
    make("mesh", "MESH=none")
    assert istio_leftovers() == []
