"""Linkerd on the simulated cluster.

With the linkerd CLI (make tools downloads it where the internet works): `make mesh MESH=linkerd` from Istio,
every lab, each canary step, lab-reset, and `make mesh MESH=none`, as for Istio. Without it (this project's
CI:
the Go module proxy serves no github.com/linkerd/linkerd2 version, docs/tools.md), those tests skip with that
reason, and what can run without Linkerd's control plane does: the API server admits every Linkerd lab's
objects, alone and all stacked, over the running shop (server-side dry run: schema, CEL rules, defaulting,
immutable fields, namespaces), with Linkerd 2.20's own CRDs and the pinned Gateway API CRDs installed.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from tests.sim.helpers import BIN, CONTEXT, ROOT, ensure_shop, make, run, sim_env, tool
from tests.sim.test_4_planted_mistakes import install_gateway_api_crds

LABS = sorted(p.parent.name for p in (ROOT / "mesh" / "linkerd" / "labs").glob("*/kustomization.yaml"))
STANDALONE = set((ROOT / "mesh" / "linkerd" / "labs" / "standalone.txt").read_text().split())
NO_CLI = (
    "no linkerd CLI: make tools could neither download nor build it here (the Go module proxy serves no "
    "github.com/linkerd/linkerd2 version; docs/tools.md), so make mesh MESH=linkerd cannot run"
)
needs_cli = pytest.mark.skipif(tool("linkerd") is None, reason=NO_CLI)


def install_linkerd_crds() -> None:
    """Linkerd 2.20's CRDs (policy.linkerd.io, linkerd.io ServiceProfile) and linkerd-smi's TrafficSplit, from
    the pinned CRD schemas make validate uses (../shared/crds or .cache/crds)."""
    script = f"source {ROOT}/scripts/lib.sh && crd_dir linkerd-2.20 && crd_dir linkerd-smi-$LINKERD_SMI"
    dirs = run(["bash", "-c", script], env=sim_env()).output.split()
    assert len(dirs) == 2, f"no Linkerd CRD schemas (make crds): {dirs}"
    for crds in dirs:
        result = run([str(BIN / "kubectl"), "--context", CONTEXT, "apply", "--server-side", "-f", crds])
        assert result.returncode == 0, result.output


def render_with_labs(labs: list[str], work: Path) -> Path:
    """A kustomization of the Linkerd overlay plus these lab Components (as scripts/lab.sh writes it)."""
    work.mkdir(parents=True)
    mesh = os.path.relpath(ROOT / "mesh" / "linkerd", work)  # kustomize takes no absolute paths
    components = "".join(f"  - {mesh}/labs/{lab}\n" for lab in labs)
    (work / "kustomization.yaml").write_text(
        f"resources:\n  - {mesh}/overlay\n" + (f"components:\n{components}" if labs else "")
    )
    return work


def lab_sets() -> list[list[str]]:
    """Each lab alone, then every lab that may share the namespace, all together (standalone ones never)."""
    stackable = [lab for lab in LABS if lab not in STANDALONE]
    return [[lab] for lab in LABS] + [stackable]


@pytest.mark.parametrize("labs", lab_sets(), ids=lambda labs: "+".join(labs))
def test_the_api_server_admits_every_linkerd_lab(labs: list[str], tmp_path: Path) -> None:
    """Over the shop without a mesh (as after Istio's uninstall in make mesh MESH=linkerd: Istio's ingress
    gateway holds NodePort 30080, which the Linkerd overlay's frontend Service takes)."""
    ensure_shop("none")
    install_gateway_api_crds()
    install_linkerd_crds()
    work = render_with_labs(labs, ROOT / ".cache" / "sim-test" / tmp_path.name)
    try:
        result = run(
            [str(BIN / "kubectl"), "--context", CONTEXT, "apply", "--dry-run=server", "-k", str(work)],
            timeout=300,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert result.returncode == 0, f"the API server refuses Linkerd labs {labs}:\n{result.tail()}"
    assert "(server dry run)" in result.output


@needs_cli
def test_make_mesh_linkerd_then_every_lab_and_back_to_none() -> None:
    ensure_shop("none")
    make("mesh", "MESH=linkerd")
    for lab in LABS:
        make("lab", f"LAB={lab}", "MESH=linkerd")
        make("lab-reset", "MESH=linkerd")
    for a, b in itertools.permutations([lab for lab in LABS if lab not in STANDALONE], 2):
        make("lab", f"LAB={a}", "MESH=linkerd")
        make("lab", f"LAB={b}", "MESH=linkerd")
        make("lab-reset", "MESH=linkerd")
    make("mesh", "MESH=none")
