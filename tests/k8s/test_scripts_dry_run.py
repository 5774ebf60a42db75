"""`make up|mesh|lab|logs DRY_RUN=1`: the exact commands a student's machine would run.

Read-only queries (docker info, kind get clusters, kubectl get ...) go to stub binaries on PATH, so the
tests control whether Docker runs, a cluster exists, a mesh is installed or a Secret is there.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.k8svalidate import render
from scripts.k8svalidate.crossref import pod_templates
from services import topology
from tests.k8s.stubs import DRY_RUN_NOTICE, REAL_KUBECTL, commands, dry_run_env, make, write_stub, write_stubs
from tests.k8s.targets import NO_CLUSTER_NEEDED

ROOT = Path(__file__).resolve().parents[2]
SERVICES = list(topology.SERVICES)
DEPLOYMENTS = sorted([*SERVICES, "product-canary", "frontend-mobile-optimized", "frontend-beta-features"])
CTX = "kubectl --context kind-shop"

pytestmark = pytest.mark.skipif(REAL_KUBECTL is None, reason="needs kubectl for `kubectl kustomize`")


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    return write_stubs(tmp_path / "stubs")


def step(cmd: str) -> str:
    """Which `make up` step a printed command belongs to."""
    if cmd.startswith(("curl ", "verify sha256")) or (cmd.startswith("mkdir") and ".cache/download" in cmd):
        return "tools"
    for prefix, name in [
        ("kind create cluster", "cluster"),
        ("docker build", "build"),
        ("docker tag", "build"),
        ("kind load", "load"),
        (f"{CTX} apply --openapi-patch=false -k", "apply"),
        (f"{CTX} -n ecommerce rollout status", "wait"),
    ]:
        if cmd.startswith(prefix):
            return name
    return "secrets" if any(w in cmd for w in ("secret", "openssl", "printf", "namespace", "mkdir")) else cmd


def test_up_prints_the_ordered_commands(stubs: Path) -> None:
    proc = make(stubs, "up")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    steps = [step(c) for c in cmds]
    order = ["tools", "cluster", "build", "load", "secrets", "apply", "wait"]
    assert [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s] == order, steps
    assert f"kind create cluster --name shop --config {ROOT}/kind/cluster.yaml --wait 120s" in cmds
    assert [c for c in cmds if step(c) == "build"] == [
        line
        for s in SERVICES
        for line in (
            f"docker build --build-arg SERVICE={s} --iidfile {ROOT}/.cache/images/{s}.iid"
            f" -t shop/{s}:dev {ROOT}",
            f"docker tag shop/{s}:dev shop/{s}:IMAGE_ID",  # the image ID's first 12 hex digits in a real run
        )
    ]
    assert [c for c in cmds if c.startswith("kind load")] == [
        "kind load docker-image --name shop "
        + " ".join([*(f"shop/{s}:IMAGE_ID" for s in SERVICES), *(f"shop/{s}:dev" for s in SERVICES)])
    ]
    assert f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/none" in cmds
    assert [c for c in cmds if step(c) == "wait"] == [
        f"{CTX} -n ecommerce rollout status statefulset/mongodb --timeout=300s",
        *(f"{CTX} -n ecommerce rollout status deployment/{d} --timeout=300s" for d in DEPLOYMENTS),
    ]
    assert "The shop is up" not in proc.stdout  # a dry run never claims what it did not do
    assert proc.stdout.splitlines()[-1] == DRY_RUN_NOTICE


def test_tools_are_downloaded_with_their_upstream_checksums(stubs: Path) -> None:
    cmds = commands(make(stubs, "up"))
    downloads = [c.split()[-1] for c in cmds if c.startswith("curl")]
    os_name = {"Linux": "linux", "Darwin": "darwin"}[platform.system()]
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    kind = f"https://github.com/kubernetes-sigs/kind/releases/download/v0.31.0/kind-{os_name}-{arch}"
    assert kind + ".sha256sum" in downloads, downloads  # this machine's build, with its checksum
    assert f"https://dl.k8s.io/release/v1.35.0/bin/{os_name}/{arch}/kubectl.sha256" in downloads, downloads
    assert sum(c.startswith("verify sha256") for c in cmds) == 2


def test_secrets_are_generated_not_committed_and_not_printed(stubs: Path) -> None:
    cmds = commands(make(stubs, "up"))
    secret_cmds = [c for c in cmds if "create secret generic" in c]
    names = [c.split("create secret generic ")[1].split()[0] for c in secret_cmds]
    assert names == [
        "mongodb-root",
        "mongodb-users",
        *(f"mongo-{s}" for s in topology.WITH_DATABASE),
        "auth-jwt",
        "frontend-session",
        "service-clients",
    ]
    assert all("--dry-run=client -o yaml | kubectl" in c for c in secret_cmds)  # idempotent apply
    assert any(c.startswith("openssl genpkey -algorithm RSA") for c in cmds)


def _secret_keys(create_command: str) -> tuple[str, set[str]]:
    """(Secret name, its keys) from a printed `kubectl create secret generic NAME --from-...` command;
    a `--from-file=<dir>` (one key per file) gives the key '*'."""
    words = create_command.split("create secret generic ", 1)[1].split("--dry-run")[0].split()
    keys = set()
    for word in words[1:]:
        source = word.split("=", 1)[1]
        keys.add(source.split("=", 1)[0] if "=" in source else "*")
    return words[0], keys


def test_every_secret_a_pod_reads_is_created_by_secrets_sh(stubs: Path) -> None:
    """The kind of mistake a new Secret invites: a Deployment reads a Secret (or key) nobody creates, and
    the pod never starts (CreateContainerConfigError). Every secretKeyRef and secret volume of every
    rendered overlay must name a Secret and key that scripts/secrets.sh creates."""
    created = dict(_secret_keys(c) for c in commands(make(stubs, "up")) if "create secret generic" in c)
    wanted: set[tuple[str, str]] = set()
    for overlay in ("k8s/overlays/dev", "mesh/istio/overlay", "mesh/linkerd/overlay"):
        for doc in render(overlay):
            for pod in pod_templates(doc):
                spec = pod.get("spec") or {}
                for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                    for e in c.get("env", []):
                        if ref := (e.get("valueFrom") or {}).get("secretKeyRef"):
                            wanted.add((ref["name"], ref["key"]))
                for volume in spec.get("volumes", []):
                    if "secret" in volume:
                        wanted.add((volume["secret"]["secretName"], "*"))
    missing = _not_created(created, wanted)
    assert wanted and not missing, f"read by pods but not created by scripts/secrets.sh: {missing}"


def _not_created(created: dict[str, set[str]], wanted: set[tuple[str, str]]) -> list[str]:
    return [
        f"{name}/{key}"
        for name, key in sorted(wanted)
        if name not in created or not (key == "*" or key in created[name] or "*" in created[name])
    ]


def test_a_secret_nobody_creates_is_caught() -> None:
    """The check above, planted: an unknown key of a created Secret, and an unknown Secret, are reported."""
    created = dict([_secret_keys("kubectl create secret generic service-clients --from-file=clients=/t/c")])
    wanted = {("service-clients", "clients"), ("service-clients", "payment"), ("payment-key", "*")}
    assert _not_created(created, wanted) == ["payment-key/*", "service-clients/payment"]


def test_existing_secrets_are_kept(stubs: Path) -> None:
    proc = make(stubs, "up", STUB_SECRETS="yes")
    assert not [c for c in commands(proc) if "create secret" in c or "openssl" in c]
    assert "MongoDB secrets exist: kept" in proc.stderr


def test_rerun_against_existing_cluster_skips_creation(stubs: Path) -> None:
    proc = make(stubs, "up", STUB_CLUSTERS="other\nshop")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    assert not [c for c in cmds if c.startswith("kind create cluster")]
    assert "kind cluster shop exists: not creating it again" in proc.stderr
    assert f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/none" in cmds


PREVIEW_STOP = "DRY_RUN: a real make up would stop here: "


def assert_a_preview_that_names_the_stop(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """A dry run is a preview, also on a machine without Docker (a student's first look): it names where a
    real run would stop and still prints every step's commands."""
    assert proc.returncode == 0, proc.stderr
    assert PREVIEW_STOP + message in proc.stderr, proc.stderr
    cmds = commands(proc)
    assert any(c.startswith("kind create cluster") for c in cmds), cmds
    assert any(c.startswith(f"{CTX} -n ecommerce rollout status") for c in cmds), cmds


def test_docker_not_running_is_a_clear_error(stubs: Path) -> None:
    proc = make(stubs, "up", STUB_DOCKER="down", DRY_RUN="0")
    assert proc.returncode != 0
    assert "Docker is not running" in proc.stderr and PREVIEW_STOP not in proc.stderr
    assert commands(proc) == []
    assert_a_preview_that_names_the_stop(make(stubs, "up", STUB_DOCKER="down"), "Docker is not running")


def test_too_little_docker_memory_is_a_clear_error(stubs: Path) -> None:
    proc = make(stubs, "up", STUB_MEM="4100000000", DRY_RUN="0")
    assert proc.returncode != 0
    assert "Docker has 4100 MB of memory; give it at least 8 GB" in proc.stderr
    assert commands(proc) == []
    preview = make(stubs, "up", STUB_MEM="4100000000")
    assert_a_preview_that_names_the_stop(preview, "Docker has 4100 MB of memory")


# Holds 127.0.0.1:PORT open while it runs the command after it (its exit status is the command's).
HOLD_PORT = (
    "import socket, subprocess, sys; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); sys.exit(subprocess.run(sys.argv[2:]).returncode)"
)


def make_with_port_held(stubs: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` (as `make` from tests/k8s/stubs.py runs it) while something listens on 127.0.0.1:PORT, in a
    network namespace of its own: another test's `make up` running at the same time (pytest's other worker)
    must not find the port taken."""
    inner = ["sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-c", HOLD_PORT, str(port)]
    cmd = ["unshare", "--net", "--", *inner, "make", "--no-print-directory", *args]
    full_env = dry_run_env(stubs, stubs.parent, **env)
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("port", [80, 443])
def test_port_in_use_is_a_clear_error(stubs: Path, port: int) -> None:
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here (unshare --net: {probe.stderr.strip()})")
    proc = make_with_port_held(stubs, port, "up", DRY_RUN="0")
    existing = make_with_port_held(
        stubs, port, "up", STUB_CLUSTERS="shop"
    )  # the cluster holds the ports: fine
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert commands(proc) == []
    assert existing.returncode == 0, existing.stderr
    assert PREVIEW_STOP not in existing.stderr
    preview = make_with_port_held(stubs, port, "up")
    assert_a_preview_that_names_the_stop(preview, f"port {port} on 127.0.0.1 is in use")


def test_unknown_mesh_is_refused(stubs: Path) -> None:
    proc = make(stubs, "up", "MESH=consul")
    assert proc.returncode != 0 and "MESH must be none, istio or linkerd" in proc.stderr


def test_mesh_none_reapplies_the_plain_overlay_and_restarts(stubs: Path) -> None:
    proc = make(stubs, "mesh", "MESH=none", STUB_CLUSTERS="shop")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    assert cmds[:3] == [
        f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/none",
        f"{CTX} -n ecommerce rollout restart deployment",
        f"{CTX} -n ecommerce rollout restart statefulset",
    ]
    assert cmds[-1] == f"{CTX} -n ecommerce rollout status deployment/user --timeout=300s"


def test_mesh_needs_a_cluster(stubs: Path) -> None:
    proc = make(stubs, "mesh", "MESH=istio", DRY_RUN="0")
    assert proc.returncode != 0 and "no cluster: run make up" in proc.stderr
    assert commands(proc) == []


def test_mesh_switch_uninstalls_current_then_installs_target(stubs: Path) -> None:
    proc = make(stubs, "mesh", "MESH=istio", STUB_CLUSTERS="shop", STUB_MESH="linkerd")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    to_cluster_ip = """'{"spec":{"type":"ClusterIP"}}'"""
    release = f"{CTX} -n ecommerce patch service frontend --type merge -p {to_cluster_ip}"
    apply = f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/istio"
    assert release in cmds and apply in cmds
    assert cmds.index(release) < cmds.index(apply)
    assert "current mesh: linkerd, target: istio" in proc.stderr


def _a_lab() -> tuple[str, str]:
    for mesh in ("linkerd", "istio"):
        labs = sorted((ROOT / "mesh" / mesh / "labs").glob("*/kustomization.yaml"))
        if labs:
            return mesh, labs[0].parent.name
    pytest.skip("no lab written yet")


def test_lab_apply_renders_overlay_plus_component(stubs: Path) -> None:
    mesh, lab = _a_lab()
    proc = make(stubs, "lab", f"MESH={mesh}", f"LAB={lab}", STUB_CLUSTERS="shop", STUB_MESH=mesh)
    assert proc.returncode == 0, proc.stderr
    tmp = ROOT / ".cache" / "lab" / f"{mesh}-{lab}"
    assert commands(proc)[-1] == f"{CTX} apply --openapi-patch=false -k {tmp}"
    assert proc.stdout.splitlines()[-1] == DRY_RUN_NOTICE
    kust = yaml.safe_load((tmp / "kustomization.yaml").read_text())
    assert kust["resources"] == [f"../../../mesh/{mesh}/overlay"]
    assert kust["components"] == [f"../../../mesh/{mesh}/labs/{lab}"]
    assert subprocess.run([str(REAL_KUBECTL), "kustomize", str(tmp)], capture_output=True).returncode == 0


def test_labs_stack_a_second_lab_keeps_the_first(stubs: Path) -> None:
    """kubectl apply of overlay + new lab alone would undo an applied lab's patches: both are rendered."""
    proc = make(
        stubs,
        "lab",
        "MESH=istio",
        "LAB=resilience",
        STUB_CLUSTERS="shop",
        STUB_MESH="istio",
        STUB_APPLIED_LABS="canary not-a-lab",
    )
    assert proc.returncode == 0, proc.stderr
    kust = yaml.safe_load((ROOT / ".cache/lab/istio-resilience/kustomization.yaml").read_text())
    assert kust["components"] == ["../../../mesh/istio/labs/canary", "../../../mesh/istio/labs/resilience"]
    from scripts.k8svalidate import render, validate_docs

    assert validate_docs(render(["mesh/istio/labs/canary", "mesh/istio/labs/resilience"])) == []


def test_lab_needs_its_mesh_installed(stubs: Path) -> None:
    mesh, lab = _a_lab()
    proc = make(stubs, "lab", f"MESH={mesh}", f"LAB={lab}", STUB_CLUSTERS="shop", STUB_MESH="none")
    assert proc.returncode != 0
    assert f"the cluster runs mesh 'none', not {mesh}: run make mesh MESH={mesh} first" in proc.stderr


def test_unknown_lab_lists_the_labs(stubs: Path) -> None:
    mesh, lab = _a_lab()
    proc = make(stubs, "lab", f"MESH={mesh}", "LAB=nope", STUB_CLUSTERS="shop", STUB_MESH=mesh)
    assert proc.returncode != 0 and "unknown lab 'nope'" in proc.stderr and lab in proc.stderr


def test_lab_reset_deletes_labelled_resources_and_reapplies(stubs: Path) -> None:
    proc = make(stubs, "lab-reset", "MESH=istio", STUB_CLUSTERS="shop", STUB_MESH="istio")
    assert proc.returncode == 0, proc.stderr
    kinds = "deployments,services,virtualservices.networking.istio.io"  # those the stub cluster knows
    assert commands(proc) == [
        f"{CTX} -n ecommerce delete {kinds} -l lab --ignore-not-found",
        f"{CTX} -n istio-system delete {kinds} -l lab --ignore-not-found",
        f"{CTX} delete namespace -l lab --ignore-not-found",
        f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/istio",
    ]


def test_lab_reset_runs_the_post_reset_hook_of_an_applied_lab(stubs: Path) -> None:
    """Linkerd's security lab outlives its resources (pods keep their policy): reset restarts the shop."""
    proc = make(
        stubs,
        "lab-reset",
        "MESH=linkerd",
        STUB_CLUSTERS="shop",
        STUB_MESH="linkerd",
        STUB_APPLIED_LABS="security",
    )
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    overlay = cmds.index(f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/linkerd")
    assert cmds[overlay + 1 : overlay + 3] == [
        f"{CTX} -n ecommerce rollout restart deployment",
        f"{CTX} -n ecommerce rollout restart statefulset",
    ]
    without = make(stubs, "lab-reset", "MESH=linkerd", STUB_CLUSTERS="shop", STUB_MESH="linkerd")
    assert not [c for c in commands(without) if "rollout restart" in c]


def test_logs(stubs: Path) -> None:
    proc = make(stubs, "logs", "S=order")
    assert commands(proc) == [f"{CTX} -n ecommerce logs -l app=order -c order --prefix --tail=200"]
    follow = make(stubs, "logs", "S=mongodb", "FOLLOW=1", "TAIL=5")
    assert commands(follow) == [
        f"{CTX} -n ecommerce logs -l app=mongodb -c mongodb --prefix --tail=5 --follow --max-log-requests=10"
    ]
    bad = make(stubs, "logs", "S=basket")
    assert bad.returncode != 0 and "unknown service 'basket'" in bad.stderr


def test_down_only_deletes_an_existing_cluster(stubs: Path) -> None:
    assert commands(make(stubs, "down", STUB_CLUSTERS="shop")) == ["kind delete cluster --name shop"]
    assert commands(make(stubs, "down")) == []


def test_kind_config_matches_pins_and_entry_ports() -> None:
    config = yaml.safe_load((ROOT / "kind" / "cluster.yaml").read_text())
    pins = dict(
        line.split("=", 1)
        for line in (ROOT / "scripts" / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    (node,) = config["nodes"]
    assert node["image"] == pins["KIND_NODE_IMAGE"]
    assert "@sha256:" in node["image"] and ":v1.35." in node["image"]
    mappings = {(m["hostPort"], m["containerPort"], m["listenAddress"]) for m in node["extraPortMappings"]}
    assert mappings == {(80, 30080, "127.0.0.1"), (443, 30443, "127.0.0.1")}


def test_status_lists_mesh_pods_services_and_url(stubs: Path) -> None:
    proc = make(stubs, "status", STUB_CLUSTERS="shop", STUB_MESH="linkerd")
    assert proc.returncode == 0, proc.stderr
    assert commands(proc) == [f"{CTX} -n ecommerce get pods -o wide", f"{CTX} -n ecommerce get services"]
    assert "mesh: linkerd" in proc.stdout
    missing = make(stubs, "status", DRY_RUN="0")
    assert missing.returncode != 0 and "no cluster: run make up" in missing.stderr


def _fake_tool(bin_dir: Path, name: str, output: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    write_stub(bin_dir, name, f"echo '{output}'\n")


@pytest.mark.parametrize(("version", "downloads"), [("v0.31.0", False), ("v0.27.0", True)])
def test_tools_are_kept_at_the_pinned_version_and_replaced_otherwise(
    stubs: Path, version: str, downloads: bool
) -> None:
    bin_dir = stubs.parent / "empty-bin"
    _fake_tool(bin_dir, "kind", f"kind {version} go1.25.1 linux/amd64")
    proc = make(stubs, "up")
    assert proc.returncode == 0, proc.stderr
    kind_downloads = [c for c in commands(proc) if c.startswith("curl") and "/kind-" in c]
    assert bool(kind_downloads) is downloads
    if downloads:
        assert f"installing kind v0.31.0 into ./bin (found {version})" in proc.stderr
    else:
        assert "kind v0.31.0 already in ./bin" in proc.stderr


# --- no cluster: every target that needs one says so; a dry run works without one and claims nothing ---

# Targets of mk/cluster.mk that act on a running cluster, with the arguments a student gives them.
NEEDS_A_CLUSTER = {
    "mesh": ["MESH=istio"],
    "lab": ["MESH=istio", "LAB=canary"],
    "lab-reset": ["MESH=linkerd"],
    "status": [],
    "logs": ["S=order"],
    "secrets": [],
    "dashboards": ["MESH=istio"],
    "verify": ["MESH=istio", "LAB=canary"],
}
NO_KUBECONFIG = {"KUBECONFIG": "/nonexistent/kubeconfig"}  # make verify's pytest probe sees no context either


def cluster_targets() -> set[str]:
    """Every documented target of the mk/*.mk files (the cluster, tools and load targets)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "mk").glob("*.mk")))
    return {
        line.split(":")[0] for line in text.splitlines() if "## " in line and not line.startswith(("#", "\t"))
    }


def test_every_cluster_target_is_classified() -> None:
    """A new target must say whether it needs a cluster (and then get the no-cluster checks below)."""
    assert cluster_targets() == set(NEEDS_A_CLUSTER) | set(NO_CLUSTER_NEEDED)


@pytest.mark.parametrize("target", sorted(NEEDS_A_CLUSTER))
def test_without_a_cluster_a_real_run_stops_and_names_it(stubs: Path, target: str) -> None:
    proc = make(stubs, target, *NEEDS_A_CLUSTER[target], DRY_RUN="0", **NO_KUBECONFIG)
    assert proc.returncode != 0, proc.stdout
    assert "no cluster: run make up" in proc.stdout + proc.stderr
    assert commands(proc) == [] or target == "verify", proc.stdout  # nothing ran against a cluster


def test_without_cluster_sim_while_a_simulated_cluster_exists_the_error_says_to_add_it(
    stubs: Path, tmp_path: Path
) -> None:
    """A student copies a hint without CLUSTER=sim while `make sim-up`'s cluster runs: not only "make up"."""
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    (sim_dir / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    proc = make(stubs, "lab-reset", "MESH=istio", DRY_RUN="0", SHOP_SIM_DIR=str(sim_dir), **NO_KUBECONFIG)
    assert proc.returncode != 0
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert error.startswith("ERROR: no cluster: run make up")
    assert error.endswith("; a simulated cluster exists (make sim-up): add CLUSTER=sim to act on it"), error
    without_sim = make(stubs, "lab-reset", "MESH=istio", DRY_RUN="0", SHOP_SIM_DIR=str(tmp_path / "none"))
    assert "CLUSTER=sim" not in without_sim.stderr


def test_dashboards_on_the_simulated_cluster_say_why_not_instead_of_forwarding(stubs: Path) -> None:
    """Its pods run no containers: no port-forward would ever answer (a student's run hung on one)."""
    proc = make(stubs, "dashboards", "MESH=istio", "CLUSTER=sim", DRY_RUN="0")
    assert proc.returncode != 0
    assert "ERROR: make dashboards port-forwards" in proc.stderr and "runs no containers" in proc.stderr
    assert commands(proc) == []


# A make command a script suggests to the student (in an error or a closing line), e.g.
# "undo with: make lab-reset MESH=$MESH": on the simulated cluster it needs CLUSTER=sim too.
SUGGESTED_MAKE = re.compile(r"make (?:up|mesh|lab|lab-reset|status|verify|down)\b.*MESH=.*")


def suggestions_without_the_cluster(text: str) -> list[str]:
    """The suggested make commands in the double-quoted strings of a script's code lines (not comments)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    strings = [q for line in lines for q in re.findall(r'"([^"]*)"', line)]
    found = [m for q in strings for m in SUGGESTED_MAKE.findall(q)]
    return [m for m in found if "$(cluster_arg)" not in m and "CLUSTER=" not in m]


def test_every_make_command_a_script_suggests_keeps_the_cluster() -> None:
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    found = {p.name: suggestions_without_the_cluster(p.read_text()) for p in scripts}
    assert {name: s for name, s in found.items() if s} == {}
    planted = 'finish "lab $LAB applied; undo with: make lab-reset MESH=$MESH"'
    assert suggestions_without_the_cluster(planted) == ["make lab-reset MESH=$MESH"]


@pytest.mark.parametrize(
    ("state", "env", "message"),
    [
        (
            "stopped",
            {"STUB_CLUSTERS": "shop", "STUB_API": "down"},
            "exists but its API server does not answer",
        ),
        ("docker down", {"STUB_DOCKER": "down"}, "Docker is not running"),
    ],
)
def test_a_stopped_cluster_or_docker_is_named_too(
    stubs: Path, state: str, env: dict[str, str], message: str
) -> None:
    """Not only a missing cluster: a stopped node container or a stopped Docker (the scripts used to read
    that as "mesh none" and blame the mesh)."""
    proc = make(stubs, "lab", "MESH=istio", "LAB=canary", DRY_RUN="0", **env)
    assert proc.returncode != 0
    assert "no cluster: " in proc.stderr and message in proc.stderr and "make up" in proc.stderr
    assert commands(proc) == []


@pytest.mark.parametrize("target", sorted(NEEDS_A_CLUSTER))
def test_without_a_cluster_a_dry_run_prints_what_would_run(stubs: Path, target: str) -> None:
    proc = make(stubs, target, *NEEDS_A_CLUSTER[target], **NO_KUBECONFIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert commands(proc), "a dry run prints the commands"
    assert "DRY_RUN: no cluster: run make up" in proc.stderr or target == "verify", proc.stderr
    assert proc.stdout.splitlines()[-1] == DRY_RUN_NOTICE


def test_lab_dry_run_without_a_cluster_is_the_lab_on_its_mesh(stubs: Path) -> None:
    """make lab LAB=canary MESH=istio DRY_RUN=1 on a machine with no cluster (issue: it refused)."""
    proc = make(stubs, "lab", "LAB=canary", "MESH=istio")
    assert proc.returncode == 0, proc.stderr
    assert "assuming a cluster with mesh istio" in proc.stderr
    assert commands(proc)[-1] == f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/lab/istio-canary"
    without_mesh = make(stubs, "lab", "LAB=canary")
    assert without_mesh.returncode != 0 and "say which mesh (MESH=istio|linkerd)" in without_mesh.stderr


def claims() -> list[re.Pattern[str]]:
    """Every success message the scripts print through `finish` (real runs only), as a pattern."""
    found = []
    for script in [*ROOT.glob("scripts/*.sh"), *ROOT.glob("mesh/*/*.sh"), *ROOT.glob("mesh/*/labs/*/*.sh")]:
        for match in re.finditer(r'finish "((?:[^"\\]|\\.)*)"', script.read_text()):
            literals = re.split(r"\$\([^)]*\)|\$\{[^}]*\}|\$[A-Za-z_]+", match.group(1))
            found.append(re.compile(".*".join(re.escape(part) for part in literals)))
    return found


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("up", ["MESH=istio"]),
        ("up", ["MESH=linkerd"]),
        ("down", []),
        ("mesh", ["MESH=linkerd"]),
        ("mesh", ["MESH=none"]),
        ("lab", ["MESH=istio", "LAB=gateway"]),
        ("lab-reset", ["MESH=istio"]),
        ("status", []),
        ("logs", ["S=user"]),
        ("secrets", []),
        ("dashboards", ["MESH=istio"]),
        ("dashboards", ["MESH=linkerd"]),
        ("verify", ["MESH=istio"]),
    ],
)
def test_a_dry_run_on_a_cluster_ends_saying_nothing_changed(
    stubs: Path, target: str, args: list[str]
) -> None:
    proc = make(stubs, target, *args, STUB_CLUSTERS="shop", STUB_MESH="istio")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == DRY_RUN_NOTICE
    out = proc.stdout + proc.stderr
    assert claims(), "the scripts' success messages were found"
    assert not [c.pattern for c in claims() if c.search(out)], out


def test_claims_are_found_in_the_scripts() -> None:
    real_up = "The shop is up: http://localhost   (mesh: none; make status, make logs S=order, make down)"
    assert [c.pattern for c in claims() if c.fullmatch(real_up)]
    assert [c.pattern for c in claims() if c.fullmatch("mesh is now: istio   shop: http://localhost")]


# Scripts that need no running cluster, and why; every other script must check for one (require_cluster)
# itself or through the common.sh it sources.
NO_CLUSTER_SCRIPTS = {
    "scripts/lib.sh": "defines require_cluster",
    "scripts/up.sh": "creates the cluster, then calls require_cluster for an existing one",
    "scripts/down.sh": "deletes a cluster if there is one (says when Docker is down)",
    "scripts/crds.sh": "downloads schemas",
    "scripts/tools.sh": "installs the pinned CLIs",
    "scripts/lib-tools.sh": "tool recipes, sourced by lib.sh",
    "scripts/verify.sh": "pytest --live fails without a cluster (tests/cluster/conftest.py)",
    "mesh/linkerd/labs/security/post-reset.sh": "runs post-apply.sh, which checks",
    "scripts/labs.sh": "the lab lifecycle library, sourced by lab.sh and mesh/*/uninstall.sh, which check",
    "scripts/images.sh": "docker build only",
    "scripts/image-test.sh": "builds the images and runs them with Docker on this machine",
    "scripts/docker-engine.sh": "the Docker engine, sourced by images.sh and image-test.sh",
    "scripts/base-images.sh": "the Dockerfile's base images, sourced by images.sh",
    "scripts/stand-in-bases.sh": "debootstraps the stand-in base images",
    "scripts/sim-up.sh": "creates the simulated cluster (keeps a healthy one)",
    "scripts/sim-down.sh": "deletes the simulated cluster if there is one",
    "scripts/sim-test.sh": "creates a simulated cluster, tests against it, deletes it",
}


def scripts_without_the_cluster_check(scripts: list[Path]) -> list[Path]:
    """Scripts that neither call require_cluster nor source a mesh common.sh (which calls it)."""
    unchecked = []
    for script in scripts:
        text = script.read_text()
        sources_common = re.search(r"^source .*common\.sh", text, re.M) is not None
        if (script.name == "common.sh" or not sources_common) and "require_cluster" not in text:
            unchecked.append(script)
    return unchecked


def test_every_script_that_acts_on_the_cluster_checks_for_one() -> None:
    scripts = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("mesh/**/*.sh")])
    checked = [s for s in scripts if str(s.relative_to(ROOT)) not in NO_CLUSTER_SCRIPTS]
    assert len(checked) >= 20
    assert scripts_without_the_cluster_check(checked) == []
    for common in ROOT.glob("mesh/*/common.sh"):
        assert re.search(r"^require_cluster$", common.read_text(), re.M), common


def test_a_planted_script_without_the_check_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "rollout.sh"
    planted.write_text('source "$(dirname "$0")/lib.sh"\nrun kubectl --context "$KUBE_CONTEXT" get pods\n')
    checked = tmp_path / "checked.sh"
    checked.write_text('source "$(dirname "$0")/lib.sh"\nrequire_cluster\nrun kubectl get pods\n')
    assert scripts_without_the_cluster_check([planted, checked]) == [planted]


# --- make up tags images by content; every apply uses the tags of the images make up loaded ---

TAGGED = {s: f"shop/{s}:{i:012x}" for i, s in enumerate(SERVICES, start=0xA0)}


def rendered_images(kustomization_dir: Path) -> dict[str, set[str]]:
    """Deployment name -> the images of its pod template, as `kubectl apply -k` would send them."""
    out = subprocess.run(
        [str(REAL_KUBECTL), "kustomize", str(kustomization_dir)], capture_output=True, text=True, check=True
    ).stdout
    return {
        d["metadata"]["name"]: {c["image"] for c in d["spec"]["template"]["spec"]["containers"]}
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "Deployment"
    }


def lib(snippet: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DRY_RUN": "0", **env}
    full_env.pop("SHOP_SCRIPT_DEPTH", None)
    return subprocess.run(
        ["bash", "-c", f"source scripts/lib.sh && {snippet}"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
    )


@pytest.mark.timeout(300)  # make up's dry run renders the overlays: slow on a loaded machine
def test_up_applies_the_images_it_built_at_their_content_tags(stubs: Path) -> None:
    proc = make(stubs, "up")
    assert proc.returncode == 0, proc.stderr
    assert f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/none" in commands(proc)
    images = rendered_images(ROOT / ".cache/app/none")
    assert images["order"] == {"shop/order:IMAGE_ID"}  # IMAGE_ID: the built image's ID in a real run
    assert images["product-canary"] == {"shop/product:IMAGE_ID"}
    assert all(i.endswith(":IMAGE_ID") for imgs in images.values() for i in imgs if i.startswith("shop/"))


def test_the_content_tag_is_the_short_image_id(tmp_path: Path) -> None:
    iid = tmp_path / "order.iid"
    iid.write_text("sha256:3f9a0c1b2d4e" + "5" * 52)
    assert lib(f"image_content_tag {iid}").stdout == "3f9a0c1b2d4e\n"
    iid.write_text("")
    failed = lib(f"image_content_tag {iid}")
    assert failed.returncode != 0 and "docker build wrote no image ID" in failed.stderr


@pytest.mark.timeout(300)
def test_a_rebuilt_image_changes_exactly_the_pod_templates_that_run_it() -> None:
    """kubectl apply rolls out a Deployment exactly when its pod template changes: with the same tags
    nothing changes on a second make up; a new order image changes only the Deployments running it."""
    refs = " ".join(TAGGED.values())
    changed = refs.replace(TAGGED["order"], "shop/order:0000000000ff")
    for name, tags in (("first", refs), ("again", refs), ("changed", changed)):
        proc = lib(f"write_app_kustomization .cache/app/test-{name} none '' {tags}")
        assert proc.returncode == 0, proc.stderr
    first, again, after = (
        rendered_images(ROOT / f".cache/app/test-{n}") for n in ("first", "again", "changed")
    )
    assert first == again
    assert {d for d in first if first[d] != after[d]} == {"order"}
    assert after["order"] == {"shop/order:0000000000ff"}


@pytest.mark.parametrize(
    ("target", "args", "kustomization"),
    [
        ("lab", ["MESH=istio", "LAB=canary"], ".cache/lab/istio-canary"),
        ("lab-reset", ["MESH=istio"], ".cache/app/istio"),
        ("mesh", ["MESH=istio"], ".cache/app/istio"),
    ],
)
def test_labs_and_mesh_switches_keep_the_images_the_cluster_runs(
    stubs: Path, target: str, args: list[str], kustomization: str
) -> None:
    """A lab or a mesh switch must not roll the shop back to other code: it keeps the running tags."""
    proc = make(
        stubs, target, *args, STUB_CLUSTERS="shop", STUB_MESH="istio", STUB_IMAGES=" ".join(TAGGED.values())
    )
    assert proc.returncode == 0, proc.stderr
    images = rendered_images(ROOT / kustomization)
    assert images["order"] == {TAGGED["order"]} and images["product-canary"] == {TAGGED["product"]}
