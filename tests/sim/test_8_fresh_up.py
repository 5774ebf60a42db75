"""`make down` and `make up MESH=istio` / `MESH=linkerd` on a new cluster, as on a student's first day; make
down (sim-down) leaves no process, port or file of the cluster behind."""

from __future__ import annotations

import subprocess

import pytest

from tests.sim.helpers import (
    SIM_DIR,
    cluster_processes,
    get_json,
    items,
    make,
    output_held_outside,
    plain_overlay_differences,
    tool,
)


def listening_ports(pids: set[int]) -> set[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)}


def test_make_down_leaves_no_process_port_or_file() -> None:
    processes = cluster_processes()
    ports = listening_ports(set(processes))
    assert processes and ports, "the simulated cluster runs nothing? (make sim-up)"
    result = make("down")
    assert "simulated cluster deleted" in result.output, result.tail()
    assert cluster_processes() == {}, "processes of the simulated cluster still run"
    assert listening_ports(set(processes)) == set(), f"still listening: {listening_ports(set(processes))}"
    assert not SIM_DIR.exists()
    again = make("down")
    assert "nothing to delete" in again.output


def test_make_up_with_istio_on_a_new_cluster() -> None:
    result = make("up", "MESH=istio", timeout=600)
    assert "every pod in ecommerce has an istio-proxy sidecar" in result.output, result.tail()
    # make up created the cluster itself this time: none of its processes kept make's output pipe.
    assert output_held_outside(cluster_processes()) == {}
    for d in items("-n", "ecommerce", "deployments"):
        assert d["status"].get("availableReplicas") == d["spec"]["replicas"], d["metadata"]["name"]
    assert get_json("namespace", "ecommerce")["metadata"]["labels"]["istio-injection"] == "enabled"
    assert plain_overlay_differences("istio") == []


@pytest.mark.skipif(
    tool("linkerd") is None,
    reason="no linkerd CLI: make tools could neither download nor build it here (the Go module proxy serves "
    "no github.com/linkerd/linkerd2 version; docs/tools.md), so make up MESH=linkerd cannot run",
)
def test_make_up_with_linkerd_on_a_new_cluster() -> None:
    make("down")
    result = make("up", "MESH=linkerd")
    assert "CLUSTER=sim: skipped linkerd check --proxy" in result.output, result.tail()
    assert plain_overlay_differences("linkerd") == []
