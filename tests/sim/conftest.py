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

from tests.sim.helpers import KUBECONFIG, current_mesh, exists, kubectl, make

if os.environ.get("SIM_SUITE") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session", autouse=True)
def sim_cluster() -> None:
    """The simulated cluster answers (make sim-test created it); else every test fails with the reason."""
    if not KUBECONFIG.exists():
        pytest.fail(f"no simulated cluster: {KUBECONFIG} is missing (run make sim-up, or make sim-test)")
    kubectl("get", "--raw", "/readyz")


def shop_deployed() -> bool:
    return exists("-n", "ecommerce", "deployment", "frontend")


def labs_applied(mesh: str) -> bool:
    kinds = (
        "virtualservices.networking.istio.io,destinationrules.networking.istio.io,peerauthentications.security.istio.io,authorizationpolicies.security.istio.io,serviceentries.networking.istio.io,sidecars.networking.istio.io,deployments"
        if mesh == "istio"
        else "deployments,services,servers.policy.linkerd.io,httproutes.gateway.networking.k8s.io"
    )
    out = kubectl("-n", "ecommerce", "get", kinds, "-l", "lab", "-o", "name", check=False)
    return bool(out.strip()) and "error" not in out.lower()


def ensure_shop(mesh: str) -> None:
    """The shop runs on `mesh` with no lab applied, reached with the student's commands."""
    if not shop_deployed():
        make("up", f"MESH={mesh}")
    elif current_mesh() != mesh:
        make("mesh", f"MESH={mesh}")
    if mesh != "none" and labs_applied(mesh):
        make("lab-reset", f"MESH={mesh}")


@pytest.fixture
def shop_without_mesh() -> None:
    ensure_shop("none")


@pytest.fixture
def istio_shop() -> None:
    ensure_shop("istio")
