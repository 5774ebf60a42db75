"""The simulated cluster itself (make sim-up): idempotent, the pinned control plane, a node big enough, and
kwok's pod lifecycle driving `kubectl rollout status` and `kubectl wait` as a kubelet does on kind."""

from __future__ import annotations

import subprocess
import sys

from services import topology
from tests.sim.helpers import (
    BIN,
    SIM_DIR,
    cluster_processes,
    get_json,
    kubectl,
    make,
    output_held_outside,
    run,
    wait_for,
)


def test_sim_up_again_keeps_the_running_cluster() -> None:
    before = get_json("namespace", "kube-system")["metadata"]["uid"]
    result = make("sim-up")
    assert "not creating it again" in result.output
    assert get_json("namespace", "kube-system")["metadata"]["uid"] == before


def test_the_control_plane_is_the_pinned_kubernetes() -> None:
    server = kubectl("version", "-o", "json")
    pinned = next(
        line.split("=", 1)[1]
        for line in (BIN.parent / "scripts" / "versions.env").read_text().splitlines()
        if line.startswith("KUBERNETES=")
    )
    assert f'"gitVersion": "{pinned}"' in server, server


def test_the_node_has_room_for_the_shop_and_both_meshes() -> None:
    node = get_json("node", f"{topology.CLUSTER_NAME}-control-plane")
    allocatable = node["status"]["allocatable"]
    assert (
        int(allocatable["cpu"]) >= 16
        and allocatable["memory"].endswith("Gi")
        and int(allocatable["pods"]) >= 200
    )
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"


def test_rollout_status_and_kubectl_wait_behave_as_on_kind() -> None:
    """A Deployment becomes available only through the scheduler, kwok's pod stages and the controllers; a
    rollout of a new template is awaited like on kind; an impossible request stays Pending and the wait
    times out (kwok does not make unschedulable pods Ready)."""
    ns = "sim-probe"
    kubectl("create", "namespace", ns)
    try:
        kubectl("-n", ns, "create", "deployment", "probe", "--image=shop/frontend:dev", "--replicas=2")
        kubectl("-n", ns, "rollout", "status", "deployment/probe", "--timeout=60s")
        kubectl("-n", ns, "wait", "--for=condition=available", "deployment/probe", "--timeout=60s")
        pods = get_json("-n", ns, "pods")["items"]
        assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
        assert all(p["spec"]["nodeName"] == f"{topology.CLUSTER_NAME}-control-plane" for p in pods)
        kubectl("-n", ns, "set", "env", "deployment/probe", "ROUND=2")
        kubectl("-n", ns, "rollout", "status", "deployment/probe", "--timeout=60s")
        assert get_json("-n", ns, "deployment", "probe")["status"]["updatedReplicas"] == 2
        kubectl("-n", ns, "set", "resources", "deployment/probe", "--requests=cpu=1000")
        stuck = run(
            [str(BIN / "kubectl"), "-n", ns, "rollout", "status", "deployment/probe", "--timeout=5s"],
            timeout=60,
        )
        assert stuck.returncode != 0, "a pod asking for 1000 CPUs was rolled out: kwok ignored scheduling"
        pending = [p for p in get_json("-n", ns, "pods")["items"] if p["status"]["phase"] == "Pending"]
        assert pending, "the unschedulable pod is not Pending"
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")


def test_no_process_of_the_cluster_keeps_its_starters_output() -> None:
    """Every daemon of the cluster (control plane, kwok, the helper, istiod) writes to its log in .cache/sim:
    one that kept the output pipe of the command that started it would make `make up CLUSTER=sim | tee` (or
    this suite's own capture of make's output) wait until the cluster is deleted."""
    processes = cluster_processes()
    assert len(processes) >= 6, processes
    assert output_held_outside(processes) == {}


def test_a_process_holding_its_starters_pipe_is_reported() -> None:
    """Planted: a process naming the cluster's folder whose stdout is a pipe."""
    with subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(SIM_DIR)], stdout=subprocess.PIPE
    ) as planted:
        try:
            wait_for("the planted process to start", lambda: planted.pid in cluster_processes(), 10, 0.1)
            held = output_held_outside(cluster_processes())
            assert list(held) == [planted.pid] and held[planted.pid][0].startswith("pipe:"), held
        finally:
            planted.kill()
