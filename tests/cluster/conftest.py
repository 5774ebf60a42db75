"""Fixtures and hooks of the live-cluster tests (`make verify`), shared with tests/cluster/<mesh>/.

In a plain `pytest` run (`make test`) everything under tests/cluster is SKIPPED, with the reason, when the
kind cluster is not reachable: no kubeconfig context `kind-shop` (override with KUBE_CONTEXT) or an API
server that does not answer within 3 seconds. `make verify` runs pytest with `--live`: then no reachable
cluster is a failure with that reason, and so is a run in which no check passed (every check skipped, e.g.
the lab is not applied). Nothing here fakes a cluster.

The helpers the fixtures hand out (pods, the shop's API journey) are in tests/cluster/helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import (
    KUBE_CONTEXT,
    NAMESPACE,
    SHOP_URL,
    CurlPod,
    curl_pod_manifest,
    kube_configuration,
    unreachable_reason,
    wait_until_ready,
)

HERE = Path(__file__).resolve().parent


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
    from kubernetes import client

    return client.ApiClient(configuration=kube_configuration())


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
        pod = curl_pod_manifest(service_account, inject, labels, annotations)
        name = pod["metadata"]["name"]
        core_v1.create_namespaced_pod(namespace, pod)
        created.append((namespace, name))
        wait_until_ready(core_v1, name, namespace, ready_timeout)
        return CurlPod(core_v1, name, namespace)

    yield make
    for ns, name in created:
        core_v1.delete_namespaced_pod(name, ns, grace_period_seconds=0)


@pytest.fixture
def shop_http(shop_url: str) -> Iterator[Any]:
    """An httpx client on the shop's entry point (cookies kept between calls)."""
    import httpx

    with httpx.Client(base_url=shop_url, timeout=20, follow_redirects=False) as http:
        yield http
