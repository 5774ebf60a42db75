"""Helpers of the Istio live checks (`make verify MESH=istio [LAB=...]`).

Requests are sent from throwaway pods INSIDE the mesh: they idle in the shop's own image (Python, no shell)
with an istio-proxy sidecar, and run probe.py for many requests, timings or a raw MongoDB hello; the
caller's Envoy stats come from its sidecar. Throwaway "broken" endpoints answer 503 behind a real Service.
Shared helpers (pods, statistics, the shop journey): tests/cluster/helpers.py. Without a reachable cluster
with Istio, every test is skipped with the reason (see conftest.py).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.helpers import exec_in_pod, idle_pod, pull_policy_for

PROBE = (Path(__file__).parent / "probe.py").read_text()
# An image the cluster already has with Python 3 in it: the shop's own (distroless: `python3`, no shell).
PYTHON_IMAGE = "shop/order:dev"
# A server answering 503 to everything: a failing endpoint for retries and outlier detection.
BROKEN_SERVER = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def _fail(self):
        self.send_response(503)
        self.send_header("x-served-by", "broken/v0")
        self.send_header("content-length", "0")
        self.end_headers()
    do_GET = do_POST = do_PUT = do_DELETE = _fail
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), H).serve_forever()
"""
LAB_MARKERS = {
    # lab -> (plural, group, name of one resource the lab adds)
    "gateway": None,
    "canary": ("virtualservices", "networking.istio.io", "product"),
    "ab-testing": ("virtualservices", "networking.istio.io", "frontend-vs"),  # patched, labelled
    "resilience": ("destinationrules", "networking.istio.io", "payment"),
    "egress": ("serviceentries", "networking.istio.io", "payment-provider"),
    "security": ("peerauthentications", "security.istio.io", "default"),
}
# The sidecar keeps the cluster stats the checks read (Istio trims Envoy's stats by default): the same
# proxyStatsMatcher the resilience lab gives the shop's callers (one source).
STATS_PATCH = (
    Path(__file__).parents[3]
    / "mesh"
    / "istio"
    / "labs"
    / "resilience"
    / "deployment-callers-proxy-stats.yaml"
)
STATS_ANNOTATION = dict(
    yaml.safe_load(STATS_PATCH.read_text())["spec"]["template"]["metadata"]["annotations"]
)


def istio_missing_reason(apps_v1: Any) -> str | None:
    """None when istiod runs in the cluster; else the reason to skip."""
    from kubernetes.client.exceptions import ApiException

    try:
        apps_v1.read_namespaced_deployment("istiod", "istio-system")
    except ApiException:
        return "Istio is not installed in the cluster: make mesh MESH=istio"
    return None


def require_lab(custom_objects: Any, namespace: str, lab: str) -> None:
    """Skip with the command to run when the lab's resources are not applied."""
    from kubernetes.client.exceptions import ApiException

    marker = LAB_MARKERS[lab]
    if marker is None:
        return
    plural, group, name = marker
    try:
        obj = custom_objects.get_namespaced_custom_object(group, "v1", namespace, plural, name)
    except ApiException:
        obj = {}
    if obj.get("metadata", {}).get("labels", {}).get("lab") != lab:
        pytest.skip(f"lab {lab} is not applied: make lab MESH=istio LAB={lab}")


def exec_in(
    core_v1: Any, pod: str, namespace: str, container: str, command: list[str], timeout: int = 180
) -> str:
    """Run a command in a container through the API server; its stdout (fails on a non-zero exit)."""
    result = exec_in_pod(core_v1, pod, namespace, container, command, timeout)
    assert result.returncode == 0, (
        f"{command[0]} {command[3:5]}... in {pod}/{container} exited {result.returncode}: "
        f"{result.stderr[-2000:]}"
    )
    return result.stdout


class MeshPod:
    """A pod idling in the python image (it has no shell), usually with an istio-proxy sidecar."""

    def __init__(self, core_v1: Any, name: str, namespace: str) -> None:
        self.core_v1, self.name, self.namespace = core_v1, name, namespace

    def http(
        self,
        url: str,
        count: int = 1,
        concurrency: int = 1,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        cmd = ["python3", "-c", PROBE, "http", url, str(count), str(concurrency), "--method", method]
        if body is not None:
            cmd += ["--body", json.dumps(body)]
        for key, value in (headers or {}).items():
            cmd += ["--header", f"{key}: {value}"]
        return list(json.loads(exec_in(self.core_v1, self.name, self.namespace, "app", cmd)))

    def mongo_hello(self, host: str = "mongodb", port: int = 27017) -> dict[str, Any]:
        cmd = ["python3", "-c", PROBE, "mongo", host, str(port)]
        return dict(json.loads(exec_in(self.core_v1, self.name, self.namespace, "app", cmd)))

    def envoy_stats(self, needle: str) -> dict[str, int]:
        """Counters of this pod's sidecar whose name contains `needle` (via pilot-agent: Envoy admin)."""
        cmd = ["pilot-agent", "request", "GET", "stats"]
        out = exec_in(self.core_v1, self.name, self.namespace, "istio-proxy", cmd)
        stats = {}
        for line in out.splitlines():
            name, _, value = line.partition(": ")
            if needle in name and value.strip().isdigit():
                stats[name] = int(value)
        return stats

    def proxy_log(self) -> str:
        return str(self.core_v1.read_namespaced_pod_log(self.name, self.namespace, container="istio-proxy"))


def mesh_pod_manifest(service_account: str, sidecar: bool) -> dict[str, Any]:
    name = f"istio-check-{uuid.uuid4().hex[:8]}"
    # the label (not the deprecated annotation) decides injection per pod
    labels = {"app": "istio-check", "sidecar.istio.io/inject": "true" if sidecar else "false"}
    command = ["python3", "-c", "import time; time.sleep(3600)"]
    return idle_pod(name, PYTHON_IMAGE, command, service_account, labels, STATS_ANNOTATION)


def broken_deployment(apps_v1: Any, core_v1: Any, namespace: str, service: str) -> dict[str, Any]:
    """A copy of the service's Deployment (same ServiceAccount, so mTLS identity and authorization are the
    real ones) with its command replaced by a 503 server and without probes (a failing readiness probe
    would take it out of the Service)."""
    svc = core_v1.read_namespaced_service(service, namespace)
    src = apps_v1.read_namespaced_deployment(service, namespace)
    port = svc.spec.ports[0].target_port
    container = src.spec.template.spec.containers[0]
    if isinstance(port, str):
        port = next(p.container_port for p in container.ports if p.name == port)
    labels = {**svc.spec.selector, "version": "broken"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{service}-broken", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "true"}},
                "spec": {
                    "serviceAccountName": src.spec.template.spec.service_account_name,
                    "containers": [
                        {
                            "name": service,
                            "image": container.image,
                            "imagePullPolicy": pull_policy_for(container.image),
                            "command": ["python3", "-c", BROKEN_SERVER.replace("PORT", str(port))],
                            "ports": [{"containerPort": port, "name": "http"}],
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                        }
                    ],
                },
            },
        },
    }


def wait_for_endpoint(
    core_v1: Any, namespace: str, service: str, deployment: str, timeout: float = 180
) -> None:
    """Return once a pod of `deployment` is a ready endpoint of `service` (and istiod had time to push it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        eps = core_v1.read_namespaced_endpoints(service, namespace)
        ready = [a.target_ref.name for s in eps.subsets or [] for a in s.addresses or [] if a.target_ref]
        if any(n.startswith(f"{deployment}-") for n in ready):
            time.sleep(5)  # let istiod push the new endpoint to the sidecars
            return
        time.sleep(2)
    raise TimeoutError(f"{deployment} never became an endpoint of Service {service}")
