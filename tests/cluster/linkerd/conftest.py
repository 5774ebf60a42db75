"""Fixtures of the Linkerd live checks: skip everything without a cluster running Linkerd and the shop.

Prefixed `l5d_` so they never collide with the fixtures of tests/cluster/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from l5d import MeshClient, reachable


@pytest.fixture(scope="session", autouse=True)
def l5d_cluster() -> None:
    reason = reachable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def l5d_client() -> Iterator[Callable[..., MeshClient]]:
    """Factory: l5d_client("frontend-sa", meshed=True) -> a started MeshClient, deleted after the test."""
    started: list[MeshClient] = []

    def make(service_account: str, meshed: bool = True) -> MeshClient:
        client = MeshClient(service_account, meshed).start()
        started.append(client)
        return client

    yield make
    for client in started:
        client.stop()
