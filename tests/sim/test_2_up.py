"""`make up` (no mesh) and `make status` against the real API server: everything but the Docker steps runs."""

from __future__ import annotations

import ipaddress
import re

from services import topology
from tests.sim.helpers import get_json, items, make, plain_overlay_differences, shop_deployed

SECRETS = {"mongodb-root", "mongodb-users", "auth-jwt", "frontend-session", "service-clients"} | {
    f"mongo-{svc}" for svc in topology.SERVICES if svc not in topology.WITHOUT_DATABASE
}


def test_make_up_deploys_the_shop_and_skips_only_the_docker_steps() -> None:
    assert not shop_deployed(), "the suite starts on a new cluster (make sim-test)"
    result = make("up")
    out = result.output
    for skipped in ("the Docker preflight", "kind (make sim-up", "the image builds", "kind load"):
        assert f"CLUSTER=sim: skipped {skipped}" in out, f"no skip line for {skipped}:\n{result.tail()}"
    for ran in (
        "secrets.sh",
        "apply --openapi-patch=false -k",
        "rollout status statefulset/mongodb",
        "rollout status deployment/order",
    ):
        assert ran in out or ran.replace(".sh", "") in out, f"`{ran}` did not run:\n{result.tail()}"
    assert "docker " not in out.replace("the Docker preflight", ""), "a docker command ran on CLUSTER=sim"

    deployments = {d["metadata"]["name"]: d for d in items("-n", "ecommerce", "deployments")}
    assert set(topology.SERVICES) <= set(deployments)
    for name, d in deployments.items():
        assert d["status"].get("availableReplicas") == d["spec"]["replicas"], f"{name} is not available"
    mongodb = get_json("-n", "ecommerce", "statefulset", "mongodb")
    assert mongodb["status"].get("readyReplicas") == mongodb["spec"]["replicas"]
    secrets = {s["metadata"]["name"] for s in items("-n", "ecommerce", "secrets")}
    assert secrets >= SECRETS, f"missing Secrets: {SECRETS - secrets}"


def test_the_cluster_holds_exactly_what_the_plain_overlay_renders() -> None:
    """Every object the dev overlay renders exists with the manifest's fields (server defaults aside), and the
    namespace holds nothing else but what Kubernetes and scripts/secrets.sh create."""
    assert plain_overlay_differences("none") == []


def _workloads() -> dict[str, int]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["generation"]
        for o in items("-n", "ecommerce", "deployments,statefulsets")
    }


def test_make_up_again_rolls_nothing_out_and_reports_nothing_configured() -> None:
    """A second make up re-applies the same manifests: no workload gets a new generation, no pod is replaced,
    and kubectl reports every object `unchanged` but the namespace (its last-applied annotation is written by
    secrets.sh and by the overlay's apply in turn). A manifest that leaves out what the API server fills into
    an atomic list (MongoDB's volumeClaimTemplates: apiVersion, kind, volumeMode, status) is re-sent on every
    apply and reported `configured`, which a student reads as a restart of the database."""
    before, pods = _workloads(), sorted(p["metadata"]["name"] for p in items("-n", "ecommerce", "pods"))
    result = make("up")
    configured = sorted(set(re.findall(r"^(\S+) configured$", result.output, re.MULTILINE)))
    assert configured == ["namespace/ecommerce"], f"re-applied and reported configured: {configured}"
    assert _workloads() == before, "a second make up changed a workload although nothing changed"
    assert sorted(p["metadata"]["name"] for p in items("-n", "ecommerce", "pods")) == pods


def test_pod_ips_come_from_the_nodes_pod_range_never_a_service_ip() -> None:
    """As on kind (pods in 10.244.0.0/x, Services elsewhere). A pod whose IP is also a Service's ClusterIP
    (kwok's default pool overlapped the Service range: istiod's pod had the `kubernetes` Service's 10.0.0.1)
    misleads anyone reading `kubectl get pods -o wide` next to `kubectl get svc`."""
    (node,) = items("nodes")
    assert node["spec"].get("podCIDR"), "the node has no podCIDR: kwok takes pod IPs from its own pool"
    pod_range = ipaddress.ip_network(node["spec"]["podCIDR"])
    pod_ips = {p["status"]["podIP"] for p in items("-A", "pods") if p["status"].get("podIP")}
    service_ips = {s["spec"]["clusterIP"] for s in items("-A", "services")} - {"None"}
    assert pod_ips, "no pod has an IP"
    assert all(ipaddress.ip_address(ip) in pod_range for ip in pod_ips), sorted(pod_ips)
    assert not pod_ips & service_ips, sorted(pod_ips & service_ips)


def test_make_status_lists_the_pods_and_services() -> None:
    result = make("status")
    assert "mesh: none" in result.output
    for svc in topology.SERVICES:
        assert f"\n{svc}-" in result.output, f"no pod of {svc} in make status"
        assert f"\n{svc} " in result.output, f"no Service {svc} in make status"
    assert "Running" in result.output
