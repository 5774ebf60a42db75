"""Fixtures for the Istio live checks (`make verify MESH=istio [LAB=...]`).

Built on tests/cluster/conftest.py (skips everything without a reachable cluster). Adds: a skip when
Istio or the lab is not there, meshed Python pods that run probe.py (many requests, timings, a raw
MongoDB hello), the calling sidecar's Envoy stats, and throwaway "broken" endpoints for a Service.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def _binomial_bounds(n: int, p: float, sigmas: float = 4.0) -> tuple[float, float]:
    """Range of successes that n Bernoulli(p) trials fall in unless something is really wrong."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - sigmas * sd, mean + sigmas * sd


@pytest.fixture(scope="session")
def binomial_bounds() -> Callable[..., tuple[float, float]]:
    """binomial_bounds(n, p, sigmas=4): (low, high) for the number of successes."""
    return _binomial_bounds


@pytest.fixture(scope="session", autouse=True)
def istio_installed(apps_v1: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        apps_v1.read_namespaced_deployment("istiod", "istio-system")
    except ApiException:
        pytest.skip("Istio is not installed in the cluster: make mesh MESH=istio")


@pytest.fixture(scope="session")
def require_lab(custom_objects: Any, namespace: str) -> Callable[[str], None]:
    """require_lab(name): skip with the command to run when the lab's resources are not applied."""
    from kubernetes.client.exceptions import ApiException

    def check(lab: str) -> None:
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

    return check


def exec_in(
    core_v1: Any, pod: str, namespace: str, container: str, command: list[str], timeout: int = 180
) -> str:
    """Run a command in a container through the API server; its stdout (fails on a non-zero exit)."""
    from kubernetes.stream import stream

    resp = stream(
        core_v1.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=command,
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=timeout)
    out, err, code = resp.read_stdout() or "", resp.read_stderr() or "", resp.returncode
    resp.close()
    assert code == 0, f"{command[0]} {command[3:5]}... in {pod}/{container} exited {code}: {err[-2000:]}"
    return str(out)


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


# The sidecar keeps the cluster stats the checks read (Istio trims Envoy's stats by default): the same
# proxyStatsMatcher the resilience lab gives the shop's callers (one source).
STATS_PATCH = (
    Path(__file__).parents[3] / "mesh" / "istio" / "labs" / "resilience" / "proxy-stats-callers.yaml"
)
STATS_ANNOTATION = dict(
    yaml.safe_load(STATS_PATCH.read_text())["spec"]["template"]["metadata"]["annotations"]
)


@pytest.fixture
def mesh_pod(core_v1: Any, namespace: str) -> Iterator[Callable[..., MeshPod]]:
    """Factory mesh_pod(service_account, sidecar=True): a ready pod; deleted after the test."""
    created: list[str] = []

    def make(service_account: str, sidecar: bool = True, ready_timeout: int = 180) -> MeshPod:
        name = f"istio-check-{uuid.uuid4().hex[:8]}"
        # the label (not the deprecated annotation) decides injection per pod
        labels = {"app": "istio-check", "sidecar.istio.io/inject": "true" if sidecar else "false"}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": STATS_ANNOTATION},
            "spec": {
                "serviceAccountName": service_account,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "app",
                        "image": PYTHON_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-c", "import time; time.sleep(3600)"],
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }
        core_v1.create_namespaced_pod(namespace, pod)
        created.append(name)
        _wait_ready(core_v1, name, namespace, ready_timeout)
        return MeshPod(core_v1, name, namespace)

    yield make
    for name in created:
        core_v1.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def _wait_ready(core_v1: Any, name: str, namespace: str, timeout: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = core_v1.read_namespaced_pod(name, namespace).status
        if status.phase == "Running" and all(c.ready for c in status.container_statuses or []):
            return
        time.sleep(1)
    raise TimeoutError(f"pod {namespace}/{name} not ready within {timeout}s")


@pytest.fixture
def broken_endpoint(apps_v1: Any, core_v1: Any, namespace: str) -> Iterator[Callable[[str], str]]:
    """broken_endpoint(service): one more pod behind that Service answering 503 to everything.

    A copy of the service's Deployment (same ServiceAccount, so mTLS identity and authorization are
    the real ones) with its command replaced by a 503 server and without probes (a failing readiness
    probe would take it out of the Service). Deleted after the test.
    """
    created: list[str] = []

    def make(service: str) -> str:
        svc = core_v1.read_namespaced_service(service, namespace)
        src = apps_v1.read_namespaced_deployment(service, namespace)
        port = svc.spec.ports[0].target_port
        container = src.spec.template.spec.containers[0]
        if isinstance(port, str):
            port = next(p.container_port for p in container.ports if p.name == port)
        labels = {**svc.spec.selector, "version": "broken"}
        name = f"{service}-broken"
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
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
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["python3", "-c", BROKEN_SERVER.replace("PORT", str(port))],
                                "ports": [{"containerPort": port, "name": "http"}],
                                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                            }
                        ],
                    },
                },
            },
        }
        apps_v1.create_namespaced_deployment(namespace, body)
        created.append(name)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            eps = core_v1.read_namespaced_endpoints(service, namespace)
            ready = [a.target_ref.name for s in eps.subsets or [] for a in s.addresses or [] if a.target_ref]
            if any(n.startswith(f"{name}-") for n in ready):
                time.sleep(5)  # let istiod push the new endpoint to the sidecars
                return name
            time.sleep(2)
        raise TimeoutError(f"{name} never became an endpoint of Service {service}")

    yield make
    for name in created:
        apps_v1.delete_namespaced_deployment(name, namespace)
