"""DRY_RUN=1 command sequences of the Istio scripts, through the make targets a student types.

Read-only queries (`kind get clusters`, `kubectl get deploy istiod`, `kubectl get deployments`) really run
under DRY_RUN, so stub binaries first on PATH answer them: a cluster `shop` exists, Istio is (or is not)
installed, the shop's Deployments do (or do not) exist. `kubectl kustomize` goes to the real kubectl.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT
from services import topology
from tests.k8s.stubs import REAL_KUBECTL, dry_run_env, lab_kinds_arg, write_stub

K = "kubectl --context kind-shop"
ISTIOCTL = "istioctl --context kind-shop"
ADDONS = "https://raw.githubusercontent.com/istio/istio/1.30.3/samples/addons"
ADDON_NAMES = ("prometheus", "grafana", "jaeger", "kiali")
INSTALL = [
    f"{ISTIOCTL} x precheck",
    f"{ISTIOCTL} install -y -f {REPO_ROOT}/mesh/istio/install/istio-kind.yaml",
    f"{K} create namespace ecommerce --dry-run=client -o yaml | {K} apply -f -",
    f"{K} label namespace ecommerce istio-injection=enabled --overwrite",
    *[f"{K} apply -f {ADDONS}/{a}.yaml" for a in ADDON_NAMES],
    f"{K} -n istio-system wait --for=condition=available --timeout=600s deployment --all",
    f"{K} apply -k {REPO_ROOT}/mesh/istio/grafana",  # the shop's dashboard
]
LAB_KINDS = lab_kinds_arg()  # the one list of lab kinds, mesh/lab-kinds.txt
UNINSTALL = [
    f"{K} label namespace ecommerce istio-injection-",
    f"{K} delete -k {REPO_ROOT}/mesh/istio/grafana --ignore-not-found",
    *[
        f"{K} delete -f {ADDONS}/{a}.yaml --ignore-not-found"
        for a in ("prometheus", "grafana", "jaeger", "kiali")
    ],
    # every lab goes first, as in make lab-reset (scripts/labs.sh; the egress lab's namespace too)
    *[f"{K} -n {ns} delete {LAB_KINDS} -l lab --ignore-not-found" for ns in ("ecommerce", "istio-system")],
    f"{K} delete namespace -l lab --ignore-not-found",
    f"{ISTIOCTL} uninstall --purge -y",
    f"{K} delete namespace istio-system --ignore-not-found",
    *[
        f"{K} delete configmap --all-namespaces --field-selector metadata.name={cm} --ignore-not-found"
        for cm in ("istio-ca-root-cert", "istio-ca-crl")
    ],
]
RESTART = [f"{K} -n ecommerce rollout restart deployment", f"{K} -n ecommerce rollout restart statefulset"]
APP_DEPLOYMENTS = sorted(
    [*topology.SERVICES, "product-canary", "frontend-beta-features", "frontend-mobile-optimized"]
)
# Lines printed by ensure_tool while it downloads a pinned tool (only when ./bin lacks it).
TOOL_STEP = re.compile(r"^(mkdir -p |curl -fsSL |verify sha256 )")


@pytest.fixture
def env(tmp_path: Path):
    """function(mesh, apps) -> environment with stubs for a cluster running `mesh` (and the shop if apps)."""
    assert REAL_KUBECTL, "kubectl (with kustomize) is needed to render the overlays"

    def make(mesh: str = "none", apps: bool = False) -> dict[str, str]:
        listing = " ".join(APP_DEPLOYMENTS) if apps else ""
        write_stub(
            tmp_path,
            "kubectl",
            f'case " $* " in\n'
            f'  *" kustomize "*) exec {REAL_KUBECTL} "$@" ;;\n'
            f'  *" get deploy istiod "*) {"exit 0" if mesh == "istio" else "exit 1"} ;;\n'
            f'  *" get namespace linkerd "*) {"exit 0" if mesh == "linkerd" else "exit 1"} ;;\n'
            f'  *" get deployments -o name "*) for d in {listing}; do echo deployment.apps/$d; done ;;\n'
            '  *" get service frontend "*) echo ClusterIP ;;\n'
            "esac\nexit 0\n",
        )
        write_stub(tmp_path, "kind", 'if [ "$1 $2" = "get clusters" ]; then echo shop; fi\nexit 0\n')
        write_stub(tmp_path, "docker", "echo 16000000000\n")
        return dry_run_env(tmp_path, tmp_path)

    return make


def make(env: dict[str, str], *args: str) -> list[str]:
    """The printed commands of `make -s ARGS` (without tool downloads and image builds)."""
    proc = subprocess.run(["make", "-s", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [ln[2:] for ln in proc.stdout.splitlines() if ln.startswith("+ ")]
    return [ln for ln in lines if not TOOL_STEP.match(ln) and not ln.startswith("docker build")]


def block_at(lines: list[str], block: list[str]) -> int:
    """Index where `block` appears contiguously in `lines` (fails the test otherwise)."""
    for i in range(len(lines) - len(block) + 1):
        if lines[i : i + len(block)] == block:
            return i
    pytest.fail("sequence not found:\n  " + "\n  ".join(block) + "\nin:\n  " + "\n  ".join(lines))


def statuses(kind_prefix: str = "deployment/") -> list[str]:
    return [f"{K} -n ecommerce rollout status {kind_prefix}{d} --timeout=300s" for d in APP_DEPLOYMENTS]


def test_make_up_istio_installs_istio_before_the_overlay(env) -> None:
    lines = make(env("none"), "up", "MESH=istio")
    assert not any(ln.startswith("kind create cluster") for ln in lines), "the cluster exists already"
    at = block_at(lines, INSTALL)
    load = next(i for i, ln in enumerate(lines) if ln.startswith("kind load docker-image"))
    # mesh/istio/overlay + image tags
    apply = lines.index(f"{K} apply --openapi-patch=false -k {REPO_ROOT}/.cache/app/istio")
    assert load < at < apply
    # a new cluster has no shop yet: nothing to restart; the pods are created with sidecars
    assert not any("rollout restart" in ln for ln in lines)
    assert lines[apply + 1 :] == [
        f"{K} -n ecommerce rollout status statefulset/mongodb --timeout=300s",
        *statuses(),
        f"{ISTIOCTL} proxy-status",  # post-install.sh: every new pod has its sidecar
    ]


def test_make_mesh_none_removes_istio_cleanly(env) -> None:
    lines = make(env("istio", apps=True), "mesh", "MESH=none")
    # uninstall.sh removes Istio; mesh.sh restarts the shop once, after the plain overlay is applied
    assert sum("rollout restart deployment" in ln for ln in lines) == 1
    assert lines == [
        *UNINSTALL,
        f"{K} apply --openapi-patch=false -k {REPO_ROOT}/.cache/app/none",
        *RESTART,
        f"{K} -n ecommerce rollout status statefulset/mongodb --timeout=300s",
        *statuses(),
    ]


def test_make_mesh_istio_on_a_running_shop_restarts_and_checks_sidecars(env) -> None:
    lines = make(env("none", apps=True), "mesh", "MESH=istio")
    at = block_at(lines, INSTALL)
    # install.sh installs the control plane only; mesh.sh restarts the shop once, waits, then checks sidecars
    assert lines[at + len(INSTALL) :] == [
        f"{K} apply --openapi-patch=false -k {REPO_ROOT}/.cache/app/istio",
        *RESTART,
        f"{K} -n ecommerce rollout status statefulset/mongodb --timeout=300s",
        *statuses(),
        f"{ISTIOCTL} proxy-status",
    ]


@pytest.mark.parametrize("mesh_arg", [["MESH=istio"], []], ids=["MESH=istio", "installed-mesh"])
def test_make_lab_canary_applies_overlay_plus_component(env, mesh_arg: list[str]) -> None:
    # `make lab LAB=canary` without MESH uses the mesh installed in the cluster (here: Istio)
    lines = make(env("istio"), "lab", *mesh_arg, "LAB=canary")
    tmp = REPO_ROOT / ".cache" / "lab" / "istio-canary"
    assert lines == [f"{K} apply --openapi-patch=false -k {tmp}"]
    kust = yaml.safe_load((tmp / "kustomization.yaml").read_text())
    assert [os.path.normpath(tmp / p) for p in kust["resources"]] == [str(REPO_ROOT / "mesh/istio/overlay")]
    assert [os.path.normpath(tmp / p) for p in kust["components"]] == [
        str(REPO_ROOT / "mesh/istio/labs/canary")
    ]


def test_make_lab_gateway_creates_the_certificate_in_istio_system_first(env) -> None:
    lines = make(env("istio"), "lab", "MESH=istio", "LAB=gateway")
    assert len(lines) == 5
    assert re.fullmatch(r"openssl req -x509 .*-keyout /\S+/tls.key -out /\S+/tls.crt", lines[0])
    assert lines[1] == f"{K} -n istio-system delete secret ecommerce-tls-secret --ignore-not-found"
    assert re.fullmatch(
        rf"{K} -n istio-system create secret tls ecommerce-tls-secret --cert=\S+ --key=\S+", lines[2]
    )
    # make lab-reset deletes what carries the label `lab`, in ecommerce and istio-system
    assert lines[3] == f"{K} -n istio-system label secret ecommerce-tls-secret lab=gateway --overwrite"
    assert lines[4] == f"{K} apply --openapi-patch=false -k {REPO_ROOT}/.cache/lab/istio-gateway"


def test_make_lab_refuses_istio_labs_when_istio_is_not_installed(env) -> None:
    proc = subprocess.run(
        ["make", "-s", "lab", "MESH=istio", "LAB=canary"], cwd=REPO_ROOT, env=env("none"), capture_output=True
    )
    assert proc.returncode != 0
    assert b"make mesh MESH=istio" in proc.stderr


def test_make_dashboards_port_forwards_the_four_addons(env) -> None:
    proc = subprocess.run(
        ["make", "-s", "dashboards", "MESH=istio"],
        cwd=REPO_ROOT,
        env=env("istio"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    forwards = [ln[2:] for ln in proc.stdout.splitlines() if ln.startswith("+ ")]
    assert forwards == [
        f"{K} -n istio-system port-forward svc/kiali 20001:20001",
        f"{K} -n istio-system port-forward svc/grafana 3000:3000",
        f"{K} -n istio-system port-forward svc/tracing 16686:80",
        f"{K} -n istio-system port-forward svc/prometheus 9090:9090",
        f"{K} -n grafana port-forward svc/grafana 3001:3000",
    ]
    assert "http://localhost" not in proc.stdout, "a dry run opened nothing and says so"
    assert proc.stdout.splitlines()[-1].startswith("DRY_RUN=1: nothing was changed")
    script = (REPO_ROOT / "mesh/istio/dashboards.sh").read_text()  # what a real run prints
    for url in (
        "http://localhost:20001/kiali",
        "http://localhost:3000",
        "http://localhost:16686/jaeger",
        "http://localhost:9090",
        "http://localhost:3001",
    ):
        assert url in script


def test_make_up_istio_over_a_shop_running_on_linkerd_switches_it_like_make_mesh(env) -> None:
    """`make up MESH=istio` on a cluster whose shop runs on Linkerd: Linkerd leaves before Istio comes (never
    two meshes at once), and the pods restart after the apply to get Istio's sidecar instead of Linkerd's."""
    lines = make(env("linkerd", apps=True), "up", "MESH=istio")
    uninstall = next(i for i, ln in enumerate(lines) if ln.startswith("linkerd") and "uninstall" in ln)
    install = block_at(lines, INSTALL)
    apply = lines.index(f"{K} apply --openapi-patch=false -k {REPO_ROOT}/.cache/app/istio")
    restart = lines.index(f"{K} -n ecommerce rollout restart deployment")
    assert uninstall < install < apply < restart
