"""DRY_RUN=1 command sequences of the Linkerd scripts (and of the make targets that call them).

Read-only queries (`kubectl get namespace ...`, `kind get clusters`, `docker info`) run for real under
DRY_RUN, so they are answered by stub binaries put first on PATH: a cluster `shop` exists, the app namespace
exists, and the mesh found in it is chosen per test.
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import pytest

from scripts.k8svalidate import REPO_ROOT
from services import topology
from tests.k8s.stubs import REAL_KUBECTL, dry_run_env, lab_kinds_arg, write_stub

CTX = "kind-shop"
K = f"kubectl --context {CTX}"
L = f"linkerd --context {CTX}"
APPLY = f"{K} apply --openapi-patch=false -k {REPO_ROOT}"  # the shop's applies (scripts/lib.sh)
INSTALL = [
    f"{K} apply --server-side -f "
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml",
    f"{K} wait --for=condition=Established --timeout=60s -f "
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml",
    f"{L} check --pre",
    f"{L} install --crds | {K} apply -f -",
    f"{L} install --crds | {K} wait --for=condition=Established --timeout=60s -f -",
    f"{L} install --values {REPO_ROOT}/mesh/linkerd/install/tracing-values.yaml | {K} apply -f -",
    f"{L} check",
    # The trace collector, meshed (tests/mesh/test_observability_static.py checks the values and manifests).
    f"{K} apply -k {REPO_ROOT}/mesh/linkerd/jaeger",
    f"{K} -n linkerd-jaeger rollout status deployment/jaeger --timeout=300s",
    f"{L} viz install --values {REPO_ROOT}/mesh/linkerd/install/viz-values.yaml | {K} apply -f -",
    f"{L} viz check",
    f"{K} apply -k {REPO_ROOT}/mesh/linkerd/grafana",
]
ANNOTATE = [f"{K} annotate namespace ecommerce linkerd.io/inject=enabled --overwrite"]
LAB_KINDS = lab_kinds_arg()  # the one list of lab kinds, mesh/lab-kinds.txt
# Every lab goes first: the same deletion as make lab-reset (scripts/labs.sh delete_lab_resources).
DELETE_LABS = [
    f"{K} -n ecommerce delete {LAB_KINDS} -l lab --ignore-not-found",
    f"{K} -n istio-system delete {LAB_KINDS} -l lab --ignore-not-found",
    f"{K} delete namespace -l lab --ignore-not-found",
]
UNINSTALL = [
    *DELETE_LABS,
    f"{K} annotate namespace ecommerce linkerd.io/inject- config.linkerd.io/opaque-ports- "
    "config.linkerd.io/default-inbound-policy-",
    f"{K} delete -k {REPO_ROOT}/mesh/linkerd/grafana --ignore-not-found",
    f"{K} delete -k {REPO_ROOT}/mesh/linkerd/jaeger --ignore-not-found",
    f"{L} viz uninstall | {K} delete -f -",
    # --force: the shop's pods still have proxies; scripts/mesh.sh restarts them once the target is in.
    f"{L} uninstall --force | {K} delete -f -",
]
# Printed by ensure_tool when it downloads a pinned tool; present only when ./bin lacks that tool.
TOOL_STEP = re.compile(r"^(mkdir -p |curl -fsSL |verify sha256 |ln -sf )")


@pytest.fixture
def stubs(tmp_path: Path):
    """Stub kubectl/kind/docker; returns a function(mesh, namespaces) -> env for subprocess."""

    def make(
        mesh: str = "none", namespaces: tuple[str, ...] = ("ecommerce",), labs: dict[str, str] | None = None
    ) -> dict[str, str]:
        """labs: resource kind -> the `lab` label of one such resource in the cluster (get KIND -l lab)."""
        existing = set(namespaces) | ({"linkerd"} if mesh == "linkerd" else set())
        # `get KINDS -l lab`: one call for the comma-separated list of lab kinds (scripts/labs.sh)
        ns_cases = "".join(
            f'    *" get "*{kind}*" -l lab "*) echo {lab}; exit 0 ;;\n' for kind, lab in (labs or {}).items()
        )
        ns_cases += "".join(f'    *" namespace {ns} "*) exit 0 ;;\n' for ns in sorted(existing))
        istiod = "exit 0" if mesh == "istio" else "exit 1"
        write_stub(
            tmp_path,
            "kubectl",
            f'case " $* " in\n    " kustomize "*) exec {REAL_KUBECTL} "$@" ;;\n'
            f'    *" get deploy istiod "*) {istiod} ;;\n{ns_cases}'
            '    *" get namespace "*|*" get ns "*) exit 1 ;;\n    *) exit 0 ;;\nesac\n',
        )
        write_stub(tmp_path, "kind", 'if [ "$1 $2" = "get clusters" ]; then echo shop; fi\nexit 0\n')
        write_stub(tmp_path, "docker", "exit 0\n")
        return dry_run_env(tmp_path, tmp_path)

    return make


def commands(stdout: str, keep_tools: bool = False) -> list[str]:
    """The printed commands ('+ ...' lines), without ensure_tool's download steps unless asked."""
    out = [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]
    return out if keep_tools else [c for c in out if not TOOL_STEP.match(c)]


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def in_order(haystack: list[str], needles: list[str]) -> bool:
    """needles appear in haystack as a contiguous block."""
    n = len(needles)
    return any(haystack[i : i + n] == needles for i in range(len(haystack) - n + 1))


def test_install_prints_the_exact_sequence_on_a_running_shop(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/install.sh"], stubs())
    assert commands(proc.stdout) == INSTALL + ANNOTATE


def test_install_again_keeps_the_running_control_plane_and_its_trust_anchor(stubs) -> None:
    env = stubs(mesh="linkerd", namespaces=("ecommerce", "linkerd-viz"))
    proc = run(["bash", "mesh/linkerd/install.sh"], env)
    assert commands(proc.stdout) == [
        *INSTALL[0:2],
        f"{L} check",
        *INSTALL[7:9],
        f"{L} viz check",
        INSTALL[-1],
        *ANNOTATE,
    ]
    assert "already installed" in proc.stderr


def test_install_before_the_app_exists_only_installs_the_control_plane(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/install.sh"], stubs(namespaces=()))
    assert commands(proc.stdout) == INSTALL


def test_install_pins_the_linkerd_cli_with_its_published_checksum(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/install.sh"], stubs())
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    suffix = f"{platform.system().lower()}-{arch}".replace("darwin-amd64", "darwin")
    url = (
        f"https://github.com/linkerd/linkerd2/releases/download/edge-26.6.3/linkerd2-cli-edge-26.6.3-{suffix}"
    )
    tools = [c for c in commands(proc.stdout, keep_tools=True) if TOOL_STEP.match(c)]
    assert any(c.endswith(f" {url}") for c in tools), tools
    assert any(c.endswith(f" {url}.sha256") for c in tools), tools
    assert any(c.startswith("verify sha256") for c in tools), tools


def test_uninstall_prints_the_exact_sequence(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/uninstall.sh"], stubs(mesh="linkerd"))
    assert commands(proc.stdout) == UNINSTALL


def test_uninstall_removes_linkerd_smi_when_the_legacy_lab_installed_it(stubs) -> None:
    proc = run(
        ["bash", "mesh/linkerd/uninstall.sh"], stubs(mesh="linkerd", namespaces=("ecommerce", "linkerd-smi"))
    )
    cmds = commands(proc.stdout)
    smi = f"linkerd-smi --context {CTX} uninstall | {K} delete -f -"
    assert cmds.index(smi) < cmds.index(f"{L} viz uninstall | {K} delete -f -")


def test_dashboards_opens_viz(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/dashboards.sh"], stubs(mesh="linkerd"))
    assert commands(proc.stdout) == [
        f"{K} -n linkerd-jaeger port-forward svc/jaeger 16686:16686",
        f"{K} -n grafana port-forward svc/grafana 3001:3000",
        f"{L} viz dashboard --port 50750",
    ]


def test_legacy_pre_apply_installs_pinned_linkerd_smi(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/labs/legacy/pre-apply.sh"], stubs(mesh="linkerd"))
    cmds = commands(proc.stdout, keep_tools=True)
    assert cmds[-3:] == [
        f"linkerd-smi --context {CTX} install | {K} apply -f -",
        f"{K} wait --for=condition=Established --timeout=60s crd/trafficsplits.split.smi-spec.io",
        f"{K} -n linkerd-smi rollout status deployment/smi-adaptor --timeout=180s",
    ]
    if not (REPO_ROOT / "bin" / "linkerd-smi-0.2.7").exists():
        url = "https://github.com/linkerd/linkerd-smi/releases/download/v0.2.7/linkerd-smi-0.2.7-"
        assert any(url in c and not c.endswith(".sha256") for c in cmds), cmds
        assert any(url in c and c.endswith(".sha256") for c in cmds), cmds


# ------------------------------------------------------------- through make (mk/cluster.mk, scripts/*.sh)


def test_post_install_checks_every_proxy(stubs) -> None:
    proc = run(["bash", "mesh/linkerd/post-install.sh"], stubs(mesh="linkerd"))
    assert commands(proc.stdout) == [f"{L} check --proxy -n ecommerce"]


def make(target: str, *args: str, env: dict[str, str]) -> list[str]:
    proc = run(["make", "--no-print-directory", target, *args, "DRY_RUN=1"], env)
    return commands(proc.stdout)


# mesh/linkerd/overlay with the image tags the shop runs (scripts/lib.sh write_app_kustomization)
APPLY_OVERLAY = f"{APPLY}/.cache/app/linkerd"
RESTART = [f"{K} -n ecommerce rollout restart deployment", f"{K} -n ecommerce rollout restart statefulset"]
WAIT_MONGODB = f"{K} -n ecommerce rollout status statefulset/mongodb --timeout=300s"
CHECK_PROXY = f"{L} check --proxy -n ecommerce"
# The Deployments of mesh/linkerd/overlay: the eight services and the three k8s/components/variants.
SHOP = set(topology.SERVICES)
SHOP |= {"product-canary", "frontend-mobile-optimized", "frontend-beta-features"}


def waited_deployments(cmds: list[str]) -> set[str]:
    prefix = f"{K} -n ecommerce rollout status deployment/"
    return {c[len(prefix) :].split(" ")[0] for c in cmds if c.startswith(prefix)}


def test_make_up_mesh_linkerd_installs_linkerd_then_applies_the_meshed_overlay(stubs) -> None:
    cmds = make("up", "MESH=linkerd", env=stubs())
    assert in_order(cmds, INSTALL + ANNOTATE + [APPLY_OVERLAY, WAIT_MONGODB]), cmds
    assert not any("istioctl" in c for c in cmds)
    # New pods get their proxies at creation: no restart; then every rollout, then `linkerd check --proxy`.
    assert not any(c in RESTART for c in cmds), cmds
    assert waited_deployments(cmds) == SHOP
    assert cmds[-1] == CHECK_PROXY and cmds.index(CHECK_PROXY) > cmds.index(WAIT_MONGODB)


def test_make_mesh_linkerd_on_a_plain_shop_installs_restarts_once_then_checks_every_proxy(stubs) -> None:
    cmds = make("mesh", "MESH=linkerd", env=stubs())
    head = INSTALL + ANNOTATE + [APPLY_OVERLAY, *RESTART, WAIT_MONGODB]
    assert cmds[: len(head)] == head, cmds
    assert waited_deployments(cmds[len(head) : -1]) == SHOP and len(cmds) == len(head) + len(SHOP) + 1, cmds
    assert cmds[-1] == CHECK_PROXY


def test_make_mesh_linkerd_from_istio_removes_istio_first(stubs) -> None:
    cmds = make("mesh", "MESH=linkerd", env=stubs(mesh="istio"))
    istio_out = next(i for i, c in enumerate(cmds) if c.startswith("istioctl") and " uninstall " in f"{c} ")
    assert istio_out < cmds.index(INSTALL[0]), cmds
    # From there on, exactly as on a shop without a mesh.
    tail = cmds[cmds.index(INSTALL[0]) :]
    head = INSTALL + ANNOTATE + [APPLY_OVERLAY, *RESTART, WAIT_MONGODB]
    assert tail[: len(head)] == head, tail
    assert waited_deployments(tail) == SHOP and tail[-1] == CHECK_PROXY


def test_make_mesh_istio_from_linkerd_uninstalls_linkerd_first(stubs) -> None:
    cmds = make("mesh", "MESH=istio", env=stubs(mesh="linkerd"))
    assert in_order(cmds, UNINSTALL), cmds
    first_istio = next(i for i, c in enumerate(cmds) if "istioctl" in c and "curl" not in c)
    assert cmds.index(UNINSTALL[-1]) < first_istio


def test_make_mesh_none_from_linkerd_removes_it_and_restores_the_plain_app(stubs) -> None:
    cmds = make("mesh", "MESH=none", env=stubs(mesh="linkerd"))
    assert in_order(cmds, UNINSTALL), cmds
    plain = f"{APPLY}/.cache/app/none"
    assert cmds.index(plain) > cmds.index(UNINSTALL[-1])


def test_make_lab_canary_applies_overlay_plus_the_canary_component(stubs) -> None:
    cmds = make("lab", "LAB=canary", "MESH=linkerd", env=stubs(mesh="linkerd"))
    assert cmds == [f"{APPLY}/.cache/lab/linkerd-canary"], cmds
    kust = (REPO_ROOT / ".cache" / "lab" / "linkerd-canary" / "kustomization.yaml").read_text()
    assert "mesh/linkerd/overlay" in kust and "mesh/linkerd/labs/canary" in kust


def test_make_lab_security_restarts_the_shop_so_the_default_policy_applies(stubs) -> None:
    # mesh/linkerd/labs/security/post-apply.sh: the default inbound policy is read when a pod starts.
    cmds = make("lab", "LAB=security", "MESH=linkerd", env=stubs(mesh="linkerd"))
    head = [f"{APPLY}/.cache/lab/linkerd-security", *RESTART, WAIT_MONGODB]
    assert cmds[: len(head)] == head, cmds
    assert waited_deployments(cmds[len(head) :]) == SHOP and len(cmds) == len(head) + len(SHOP), cmds


@pytest.mark.parametrize("lab", ["ab-testing", "resilience"])
def test_make_lab_without_hooks_only_applies(stubs, lab: str) -> None:
    cmds = make("lab", f"LAB={lab}", "MESH=linkerd", env=stubs(mesh="linkerd"))
    assert cmds == [f"{APPLY}/.cache/lab/linkerd-{lab}"], cmds


def test_make_lab_legacy_installs_linkerd_smi_first(stubs) -> None:
    cmds = make("lab", "LAB=legacy", "MESH=linkerd", env=stubs(mesh="linkerd"))
    smi = cmds.index(f"linkerd-smi --context {CTX} install | {K} apply -f -")
    assert smi < cmds.index(f"{APPLY}/.cache/lab/linkerd-legacy")


def fails(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", *cmd, "DRY_RUN=1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


def test_legacy_refuses_to_join_a_running_lab(stubs) -> None:
    env = stubs(mesh="linkerd", labs={"httproutes.gateway.networking.k8s.io": "canary"})
    out = fails(["lab", "LAB=legacy", "MESH=linkerd"], env)
    assert "lab legacy cannot run together with lab canary" in out and "make lab-reset MESH=linkerd" in out
    assert "+ " not in out, "nothing may be installed or applied before the refusal"


@pytest.mark.parametrize("lab", ["canary", "ab-testing", "resilience", "security"])
def test_other_labs_refuse_to_join_the_legacy_lab(stubs, lab: str) -> None:
    env = stubs(mesh="linkerd", labs={"trafficsplits.split.smi-spec.io": "legacy"})
    out = fails(["lab", f"LAB={lab}", "MESH=linkerd"], env)
    assert f"lab {lab} cannot run together with lab legacy" in out and "+ " not in out, out


def test_combinable_labs_join_each_other(stubs) -> None:
    env = stubs(mesh="linkerd", labs={"servers.policy.linkerd.io": "security"})
    cmds = make("lab", "LAB=canary", "MESH=linkerd", env=env)
    assert cmds == [f"{APPLY}/.cache/lab/linkerd-canary"], cmds
