"""Fixtures of the Linkerd live checks: skip everything without a cluster running Linkerd and the shop.

Prefixed `l5d_` so they never collide with the fixtures of tests/cluster/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.linkerd.helpers import MeshClient, reachable


@pytest.fixture(scope="session", autouse=True)
def l5d_cluster() -> None:
    reason = reachable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def l5d_client(curl_pod: Callable[..., Any]) -> Callable[..., MeshClient]:
    """Factory: l5d_client("frontend-sa", meshed=True) -> a MeshClient (pod deleted after the test)."""

    def make(service_account: str, meshed: bool = True) -> MeshClient:
        inject = "linkerd" if meshed else False
        pod = curl_pod(service_account=service_account, inject=inject, ready_timeout=180)
        return MeshClient(pod, service_account, meshed)

    return make
