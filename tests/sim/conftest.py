"""The simulated-cluster suite: `make sim-test` runs it against a new `make sim-up` cluster.

A plain `pytest` (`make test`'s pytest step) does not collect these files: they change a cluster and take
minutes, and `make test` runs them through `make sim-test`, which creates that cluster first (SIM_SUITE=1).
Run by hand:  make sim-up && SIM_SUITE=1 .venv/bin/pytest tests/sim -x   (make sim-down afterwards).

The tests follow a student's path through one cluster, in file order (test_1_*.py, test_2_*.py, ...); each
test first brings the cluster to the state it needs with the student's own commands (fixtures below), so a
test also runs alone (-k), only slower.
"""

from __future__ import annotations

import os

import pytest

from tests.sim.helpers import KUBECONFIG, ensure_shop, kubectl

if os.environ.get("SIM_SUITE") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session", autouse=True)
def sim_cluster() -> None:
    """The simulated cluster answers (make sim-test created it); else every test fails with the reason."""
    if not KUBECONFIG.exists():
        pytest.fail(f"no simulated cluster: {KUBECONFIG} is missing (run make sim-up, or make sim-test)")
    kubectl("get", "--raw", "/readyz")


@pytest.fixture
def shop_without_mesh() -> None:
    ensure_shop("none")


@pytest.fixture
def istio_shop() -> None:
    ensure_shop("istio")
