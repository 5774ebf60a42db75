"""Every script that applies CustomResourceDefinitions waits until the API server serves them.

Right after `kubectl apply` of a CRD the API server does not yet serve its kind: objects of it are refused
with "no matches for kind ..." until the CRD's condition Established is true and discovery lists it (the
simulated-cluster suite hit exactly that: tests/sim/test_4_planted_mistakes.py applied an HTTPRoute right
after the Gateway API CRDs). A CRD apply is a shell line that applies the Gateway API bundle, a `crds` folder
or `linkerd install --crds`, or installs the linkerd-smi extension (it serves the TrafficSplit CRD)."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.k8svalidate import REPO_ROOT

CRD_SOURCE = r"(install --crds|\$\{?crds\b|GATEWAY_API_URL|crd-all|linkerd-smi .*\binstall\b)"
CRD_APPLY = re.compile(r"^(?=.*\bapply\b).*" + CRD_SOURCE)
ESTABLISHED_WAIT = re.compile(r"\bwait --for=condition=Established\b")
SCRIPT_DIRS = ("scripts", "mesh")


def unwaited_crd_applies(script: str) -> list[str]:
    """The CRD-applying lines of a shell script (comments ignored) with no Established wait after them."""
    lines = [line.strip() for line in script.splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    return [
        line
        for index, line in enumerate(code)
        if CRD_APPLY.search(line) and not any(ESTABLISHED_WAIT.search(later) for later in code[index + 1 :])
    ]


def shell_scripts() -> list[Path]:
    return sorted(p for d in SCRIPT_DIRS for p in (REPO_ROOT / d).rglob("*.sh"))


def test_every_crd_apply_in_the_scripts_is_followed_by_an_established_wait() -> None:
    found = {
        str(path.relative_to(REPO_ROOT)): missing
        for path in shell_scripts()
        if (missing := unwaited_crd_applies(path.read_text()))
    }
    assert not found, f"CRDs applied without `kubectl wait --for=condition=Established` after them: {found}"


def test_the_scripts_that_install_crds_are_recognised() -> None:
    """The check above sees the real CRD installs (it would pass vacuously if the pattern matched nothing)."""
    applying = {
        str(path.relative_to(REPO_ROOT))
        for path in shell_scripts()
        for line in path.read_text().splitlines()
        if CRD_APPLY.search(line) and not line.lstrip().startswith("#")
    }
    assert {"mesh/linkerd/install.sh", "mesh/linkerd/labs/legacy/pre-apply.sh"} <= applying


def test_a_planted_crd_apply_without_a_wait_is_found() -> None:
    planted = 'run $K apply --server-side -f "$crds"\nrun $K apply -f mesh/linkerd/labs/canary\n'
    assert unwaited_crd_applies(planted) == ['run $K apply --server-side -f "$crds"']
    wait = 'run $K wait --for=condition=Established -f "$crds"\n'
    waited = planted.replace("run $K apply -f mesh", wait + "run $K apply -f mesh")
    assert unwaited_crd_applies(waited) == []
    piped = 'run_sh "$L install --crds | $K apply -f -"\n'
    assert unwaited_crd_applies(piped) == [piped.strip()]
