"""Fixtures of the Istio live checks: skip everything without Istio; meshed pods and broken endpoints,
deleted after each test. What they do is in helpers.py; tests/cluster/conftest.py skips without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.helpers import wait_until_ready
from tests.cluster.istio.helpers import (
    MeshPod,
    broken_deployment,
    istio_missing_reason,
    mesh_pod_manifest,
    wait_for_endpoint,
)


@pytest.fixture(scope="session", autouse=True)
def istio_installed(apps_v1: Any) -> None:
    reason = istio_missing_reason(apps_v1)
    if reason:
        pytest.skip(reason)


@pytest.fixture
def mesh_pod(core_v1: Any, namespace: str) -> Iterator[Callable[..., MeshPod]]:
    """Factory mesh_pod(service_account, sidecar=True): a ready pod; deleted after the test."""
    created: list[str] = []

    def make(service_account: str, sidecar: bool = True, ready_timeout: int = 180) -> MeshPod:
        pod = mesh_pod_manifest(service_account, sidecar)
        name = pod["metadata"]["name"]
        core_v1.create_namespaced_pod(namespace, pod)
        created.append(name)
        wait_until_ready(core_v1, name, namespace, ready_timeout)
        return MeshPod(core_v1, name, namespace)

    yield make
    for name in created:
        core_v1.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


@pytest.fixture
def broken_endpoint(apps_v1: Any, core_v1: Any, namespace: str) -> Iterator[Callable[[str], str]]:
    """broken_endpoint(service): one more pod behind that Service answering 503 to everything (see
    helpers.broken_deployment). Deleted after the test."""
    created: list[str] = []

    def make(service: str) -> str:
        body = broken_deployment(apps_v1, core_v1, namespace, service)
        name = body["metadata"]["name"]
        apps_v1.create_namespaced_deployment(namespace, body)
        created.append(name)
        wait_for_endpoint(core_v1, namespace, service, name)
        return name

    yield make
    for name in created:
        apps_v1.delete_namespaced_deployment(name, namespace)
