"""Helpers of the live-cluster checks (`make verify`), shared by tests/cluster and tests/cluster/<mesh>/.

The fixtures that hand these out are in the conftest.py files; this module holds what they (and the tests)
call: the cluster probe, throwaway pods and running commands in them, the statistics the traffic-split
checks share, and the shop's frontend JSON API journey (docs/architecture.md). Nothing here fakes a cluster.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from services import topology

# As scripts/lib.sh: CLUSTER_NAME may come from the environment; KUBE_CONTEXT overrides the context.
CLUSTER_NAME = os.environ.get("CLUSTER_NAME") or topology.CLUSTER_NAME
KUBE_CONTEXT = os.environ.get("KUBE_CONTEXT", f"kind-{CLUSTER_NAME}")
NAMESPACE = topology.NAMESPACE
SHOP_URL = os.environ.get("SHOP_URL", "http://localhost")
CURL_IMAGE = "curlimages/curl:8.11.1"
Doc = dict[str, Any]


def probe_cluster(
    context: str = KUBE_CONTEXT, config_file: str | None = None, timeout: float = 3
) -> str | None:
    """None when the API server of `context` answers GET /version in `timeout` s, else why not."""
    try:
        from kubernetes import client, config
    except ImportError as exc:  # pragma: no cover - the dev requirements install it
        return f"kubernetes client not installed ({exc})"
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=config_file, context=context, client_configuration=cfg)
    except Exception as exc:
        return f"no cluster: run make up (no kubeconfig context {context!r}: {exc})"
    cfg.retries = 0  # one attempt: answer within `timeout` or skip
    try:
        with client.ApiClient(cfg) as api:
            client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as exc:
        return (
            f"no cluster: {context!r} not reachable within {timeout:g} s ({type(exc).__name__});"
            f" run make up (or start its container: docker start {CLUSTER_NAME}-control-plane)"
        )
    return None


@cache
def unreachable_reason() -> str | None:
    return probe_cluster()


def kube_configuration() -> Any:
    """The kubernetes client's configuration for KUBE_CONTEXT."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(context=KUBE_CONTEXT, client_configuration=cfg)
    return cfg


# --- pods ------------------------------------------------------------------------------------------


@dataclass
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


def exec_in_pod(
    core_v1: Any, pod: str, namespace: str, container: str, command: list[str], timeout: int = 60
) -> ExecResult:
    """Run a command in a container through the API server (no shell needed in the image)."""
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
    return ExecResult(code if code is not None else -1, out, err)


def wait_until_ready(core_v1: Any, name: str, namespace: str, timeout: float) -> None:
    """Return once every container of the pod is ready; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = core_v1.read_namespaced_pod(name, namespace).status
        if status.phase == "Running" and all(c.ready for c in status.container_statuses or []):
            return
        time.sleep(1)
    raise TimeoutError(f"pod {namespace}/{name} not ready within {timeout:g}s")


NON_ROOT = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def pull_policy_for(image: str) -> str:
    """Never for the shop's images (built and loaded into the node by make up: `shop/order` would mean
    docker.io/shop/order), IfNotPresent for public ones (curl, nginx)."""
    return "Never" if image.startswith("shop/") else "IfNotPresent"


def idle_pod(
    name: str,
    image: str,
    command: list[str],
    service_account: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    container: str = "app",
) -> Doc:
    """A pod that idles (`command` sleeps) so tests can exec requests from it; deleted fast."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {
            "serviceAccountName": service_account,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": container,
                    "image": image,
                    "imagePullPolicy": pull_policy_for(image),
                    "command": command,
                    "securityContext": NON_ROOT,
                }
            ],
        },
    }


def injection_annotations(inject: str | bool | None) -> dict[str, str]:
    """None: the namespace default; "istio"/"linkerd": force a sidecar/proxy in; False: keep both out."""
    if inject == "istio":
        return {"sidecar.istio.io/inject": "true"}
    if inject == "linkerd":
        return {"linkerd.io/inject": "enabled"}
    if inject is False:
        return {"sidecar.istio.io/inject": "false", "linkerd.io/inject": "disabled"}
    return {}


class CurlPod:
    """A throwaway pod (curl image, `sleep`) to run commands from inside the mesh."""

    def __init__(self, core_v1: Any, name: str, namespace: str) -> None:
        self.core_v1, self.name, self.namespace = core_v1, name, namespace

    def exec(self, command: list[str], timeout: int = 60) -> ExecResult:
        return exec_in_pod(self.core_v1, self.name, self.namespace, "curl", command, timeout)

    def curl(self, url: str, *args: str, timeout: int = 30) -> ExecResult:
        """`curl -sS` from the pod; add e.g. "-o", "/dev/null", "-w", "%{http_code}" for the status only."""
        return self.exec(["curl", "-sS", "--max-time", str(timeout), *args, url], timeout=timeout + 15)

    def http_status(self, url: str, *args: str) -> int:
        """HTTP status of a request from the pod; 0 when the connection failed (e.g. TCP denied)."""
        res = self.curl(url, "-o", "/dev/null", "-w", "%{http_code}", *args)
        return int(res.stdout.strip() or 0) if res.stdout.strip().isdigit() else 0


def curl_pod_manifest(
    service_account: str | None,
    inject: str | bool | None,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
) -> Doc:
    name = f"curl-{uuid.uuid4().hex[:8]}"
    notes = {**(annotations or {}), **injection_annotations(inject)}
    return idle_pod(
        name,
        CURL_IMAGE,
        ["sleep", "3600"],
        service_account or "default",
        {"app": "curl-test", **(labels or {})},
        notes,
        container="curl",
    )


# --- statistics of traffic splits ------------------------------------------------------------------


def binomial_bounds(n: int, p: float, sigmas: float = 4.0) -> tuple[float, float]:
    """Range of successes that n Bernoulli(p) trials fall in unless something is really wrong
    (4 sigmas: a false alarm about once in 16 000 runs)."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - sigmas * sd, mean + sigmas * sd


def binomial_ok(successes: int, n: int, p: float, z: float = 4.0) -> bool:
    """`successes` lies within z standard deviations of n*p."""
    low, high = binomial_bounds(n, p, z)
    return low <= successes <= high


# --- the shop's frontend JSON API (docs/architecture.md); every call the live tests make is here ---

TEST_ADDRESS = {
    "name": "Ada Lovelace",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "NL",
}
TEST_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}


def register_and_login(http: Any, email: str | None = None, password: str = "correct horse battery") -> str:
    """Create a shopper through the frontend and return its access token (also kept as cookies)."""
    email = email or f"smoke-{uuid.uuid4().hex[:10]}@example.com"
    r = http.post("/api/register", json={"email": email, "password": password, "name": "Smoke Test"})
    assert r.status_code == 201, f"register: {r.status_code} {r.text}"
    r = http.post("/api/login", json={"email": email, "password": password})
    assert r.status_code == 200, f"login: {r.status_code} {r.text}"
    token = r.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return str(token)


def checkout_once(http: Any) -> dict[str, Any]:
    """Register, log in, put the first product in stock in the cart and check out; returns the order."""
    register_and_login(http)
    r = http.get("/api/products")
    assert r.status_code == 200, f"products: {r.status_code} {r.text}"
    product = next(p for p in r.json()["items"] if p.get("stock", 1) > 0)
    r = http.post("/api/cart/items", json={"product_id": product["id"], "quantity": 1})
    assert r.status_code in (200, 201), f"add to cart: {r.status_code} {r.text}"
    key = f"smoke-{uuid.uuid4().hex}"
    r = http.post(
        "/api/checkout",
        json={"shipping_address": TEST_ADDRESS, "card": TEST_CARD},
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 201, f"checkout: {r.status_code} {r.text}"
    return dict(r.json())


# --- tracing (docs/<mesh>/observability.md) ---------------------------------------------------------------


def traced_checkout(http: Any, request_id: str) -> dict[str, Any]:
    """A shopper's purchase where only the checkout carries `x-request-id: request_id` (so exactly one
    request, one trace, has it); returns the order."""
    register_and_login(http)
    product = next(p for p in http.get("/api/products").json()["items"] if p.get("stock", 1) > 0)
    r = http.post("/api/cart/items", json={"product_id": product["id"], "quantity": 1})
    assert r.status_code in (200, 201), f"add to cart: {r.status_code} {r.text}"
    r = http.post(
        "/api/checkout",
        json={"shipping_address": TEST_ADDRESS, "card": TEST_CARD},
        headers={"Idempotency-Key": uuid.uuid4().hex, "x-request-id": request_id},
    )
    assert r.status_code == 201, f"checkout: {r.status_code} {r.text}"
    return dict(r.json())


def jaeger_traces(
    pod: CurlPod, query_url: str, request_id: str, services: set[str], timeout: float = 120
) -> list[dict[str, Any]]:
    """The traces Jaeger's query API (`query_url`, read from inside the cluster) holds for the request whose
    application spans carry `guid:x-request-id=request_id`, polled until spans of every one of `services`
    arrived (the proxies and apps export in batches) or `timeout` ran out."""
    import json
    import urllib.parse

    from scripts.jaeger import span_services
    from services.kit.tracing import REQUEST_ID_ATTRIBUTE

    params = urllib.parse.urlencode(
        {"service": "frontend", "tags": json.dumps({REQUEST_ID_ATTRIBUTE: request_id}), "lookback": "1h"}
    )
    deadline = time.monotonic() + timeout
    traces: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = pod.curl(f"{query_url}/api/traces?{params}")
        if result.returncode == 0 and result.stdout.strip().startswith("{"):
            traces = json.loads(result.stdout).get("data") or []
            if traces and services <= {s for t in traces for s in span_services(t)}:
                return traces
        time.sleep(3)
    return traces
