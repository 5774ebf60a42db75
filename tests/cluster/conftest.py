"""Fixtures for the live-cluster tests (`make verify`), shared with tests/cluster/<mesh>/.

In a plain `pytest` run (`make test`) everything under tests/cluster is SKIPPED, with the reason, when the
kind cluster is not reachable: no kubeconfig context `kind-shop` (override with KUBE_CONTEXT) or an API
server that does not answer within 3 seconds. `make verify` runs pytest with `--live`: then no reachable
cluster is a failure with that reason, and so is a run in which no check passed (every check skipped, e.g.
the lab is not applied). Nothing here fakes a cluster.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KUBE_CONTEXT = os.environ.get("KUBE_CONTEXT", "kind-shop")
NAMESPACE = "ecommerce"
SHOP_URL = os.environ.get("SHOP_URL", "http://localhost")
CURL_IMAGE = "curlimages/curl:8.11.1"
HERE = Path(__file__).resolve().parent


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
            " run make up (or start its container: docker start shop-control-plane)"
        )
    return None


@cache
def unreachable_reason() -> str | None:
    return probe_cluster()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live",
        action="store_true",
        help="make verify: fail (instead of skipping) without a reachable cluster, and when no check passed",
    )


def _live(config: pytest.Config) -> bool:
    return bool(config.getoption("--live", default=False))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cluster_items = [i for i in items if HERE in Path(str(i.path)).resolve().parents]
    if not cluster_items:
        return
    reason = unreachable_reason()
    if reason and _live(config) and not config.option.collectonly:
        pytest.exit(f"make verify: {reason}", returncode=pytest.ExitCode.TESTS_FAILED)
    for item in cluster_items:
        item.add_marker(pytest.mark.cluster)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"live cluster test skipped: {reason}"))


_passed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _passed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under --live, a run in which every check was skipped verified nothing: that is a failure."""
    if _live(session.config) and exitstatus == pytest.ExitCode.OK and not _passed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "make verify: no check passed, nothing was verified (the skip reasons above say what to do)",
                red=True,
                bold=True,
            )


@pytest.fixture(scope="session")
def kube_context() -> str:
    return KUBE_CONTEXT


@pytest.fixture(scope="session")
def namespace() -> str:
    return NAMESPACE


@pytest.fixture(scope="session")
def shop_url() -> str:
    """The kind entry point: host port 80 -> NodePort 30080 (frontend, or Istio's ingress gateway)."""
    return SHOP_URL


@pytest.fixture(scope="session")
def api_client() -> Any:
    from kubernetes import client, config

    return client.ApiClient(configuration=_configuration(config, client))


def _configuration(config: Any, client: Any) -> Any:
    cfg = client.Configuration()
    config.load_kube_config(context=KUBE_CONTEXT, client_configuration=cfg)
    return cfg


@pytest.fixture(scope="session")
def core_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def custom_objects(api_client: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


@dataclass
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


class CurlPod:
    """A throwaway pod (curl image, `sleep`) to run commands from inside the mesh."""

    def __init__(self, core_v1: Any, name: str, namespace: str) -> None:
        self.core_v1, self.name, self.namespace = core_v1, name, namespace

    def exec(self, command: list[str], timeout: int = 60) -> ExecResult:
        from kubernetes.stream import stream

        resp = stream(
            self.core_v1.connect_get_namespaced_pod_exec,
            self.name,
            self.namespace,
            container="curl",
            command=command,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        resp.run_forever(timeout=timeout)
        out, err = resp.read_stdout() or "", resp.read_stderr() or ""
        code = resp.returncode
        resp.close()
        return ExecResult(code if code is not None else -1, out, err)

    def curl(self, url: str, *args: str, timeout: int = 30) -> ExecResult:
        """`curl -sS` from the pod; add e.g. "-o", "/dev/null", "-w", "%{http_code}" for the status only."""
        return self.exec(["curl", "-sS", "--max-time", str(timeout), *args, url], timeout=timeout + 15)

    def http_status(self, url: str, *args: str) -> int:
        """HTTP status of a request from the pod; 0 when the connection failed (e.g. TCP denied)."""
        res = self.curl(url, "-o", "/dev/null", "-w", "%{http_code}", *args)
        return int(res.stdout.strip() or 0) if res.stdout.strip().isdigit() else 0


@pytest.fixture
def curl_pod(core_v1: Any, namespace: str) -> Iterator[Callable[..., CurlPod]]:
    """Factory: curl_pod(service_account=None, inject=None, labels=None, annotations=None, namespace=...).

    inject: None leaves the namespace default; "istio"/"linkerd" forces a sidecar/proxy in, False keeps
    it out (sidecar.istio.io/inject: "false" and linkerd.io/inject: disabled).
    Pods are deleted after the test.
    """
    created: list[tuple[str, str]] = []

    def make(
        service_account: str | None = None,
        inject: str | bool | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        namespace: str = namespace,
        ready_timeout: int = 120,
    ) -> CurlPod:
        name = f"curl-{uuid.uuid4().hex[:8]}"
        notes = dict(annotations or {})
        if inject == "istio":
            notes["sidecar.istio.io/inject"] = "true"
        elif inject == "linkerd":
            notes["linkerd.io/inject"] = "enabled"
        elif inject is False:
            notes.update({"sidecar.istio.io/inject": "false", "linkerd.io/inject": "disabled"})
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {"app": "curl-test", **(labels or {})},
                "annotations": notes,
            },
            "spec": {
                "serviceAccountName": service_account or "default",
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "curl",
                        "image": CURL_IMAGE,
                        "command": ["sleep", "3600"],
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
        created.append((namespace, name))
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            status = core_v1.read_namespaced_pod(name, namespace).status
            if status.phase == "Running" and all(c.ready for c in status.container_statuses or []):
                return CurlPod(core_v1, name, namespace)
            time.sleep(1)
        raise TimeoutError(f"pod {namespace}/{name} not ready within {ready_timeout}s")

    yield make
    for ns, name in created:
        core_v1.delete_namespaced_pod(name, ns, grace_period_seconds=0)


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


@pytest.fixture
def shop_http(shop_url: str) -> Iterator[Any]:
    """An httpx client on the shop's entry point (cookies kept between calls)."""
    import httpx

    with httpx.Client(base_url=shop_url, timeout=20, follow_redirects=False) as http:
        yield http
