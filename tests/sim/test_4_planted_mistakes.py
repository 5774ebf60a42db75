"""Planted mistakes that only a real API server rejects (tests/sim/planted.py): each fails the student's
command with the API server's own message, for the planted object only (every other object of the same
apply is admitted; the unplanted labs run in tests/sim/test_3_istio.py). `make validate`
does not see any of them (none of its checks evaluates CEL, knows live objects or the cluster's
namespaces)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sim.helpers import BIN, CONTEXT, ensure_shop, make, run, sim_env
from tests.sim.planted import MISTAKES, Mistake, PlantedRepo

# How kubectl apply reports an object the API server refused: "Error from server (Reason): ..." (admission,
# e.g. a missing namespace) or 'The Kind "name" is invalid: ...' (validation: schema, CEL, immutable fields).
REFUSAL = re.compile(r'^(Error from server \(|The \S+ "[^"]+" is invalid: )')


def _server_dry_run(repo: Path, file: str) -> tuple[int, str]:
    """`kubectl apply --dry-run=server`: the whole admission chain (schema, CEL, webhooks), nothing stored."""
    result = run(
        [str(BIN / "kubectl"), "--context", CONTEXT, "apply", "--dry-run=server", "-f", file], cwd=repo
    )
    return result.returncode, result.output


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_the_api_server_refuses_the_planted_mistake(mistake: Mistake, tmp_path: Path) -> None:
    ensure_shop("istio")
    planted = PlantedRepo(tmp_path / "planted", mistake)
    if mistake.mesh == "istio":
        # The student's command, on the repo with the mistake: it must fail, with the API server's message,
        # for the planted object only. Every other object of the same apply is admitted (the control: the
        # lab without the mistake is the one tests/sim/test_3_istio.py applies from its guide).
        result = make("lab", f"LAB={mistake.lab}", "MESH=istio", cwd=planted.root, check=False)
        make("lab-reset", "MESH=istio")  # what the refused apply may have created before the refusal
        assert result.returncode != 0, f"make lab accepted the planted mistake:\n{result.tail()}"
        refusals = [line for line in result.output.splitlines() if REFUSAL.match(line)]
        assert len(refusals) == 1, f"not one refusal (the planted object's):\n{result.tail()}"
        assert mistake.refusal in refusals[0], f"not refused with {mistake.refusal!r}:\n{result.tail()}"
    else:
        # Linkerd's labs need `make mesh MESH=linkerd` (its CLI); the HTTPRoute file itself goes to the same
        # API server with the pinned Gateway API CRDs installed (scripts/sim gateway_api_crds).
        install_gateway_api_crds()
        code, out = _server_dry_run(Path(Path.cwd()), mistake.file)
        assert code == 0, f"the unplanted {mistake.file} is refused already:\n{out}"
        code, out = _server_dry_run(planted.root, mistake.file)
        assert code != 0, f"the API server accepted the planted mistake:\n{out}"
        assert mistake.refusal in out, f"not refused with {mistake.refusal!r}:\n{out}"


def install_gateway_api_crds() -> None:
    """The pinned Gateway API CRDs (v1.2.1), as mesh/linkerd/install.sh installs them (server-side apply)."""
    from tests.sim.helpers import ROOT, items

    if any(c["metadata"]["name"] == "httproutes.gateway.networking.k8s.io" for c in items("crds")):
        return
    script = f"source {ROOT}/scripts/lib.sh && crd_dir gateway-api-$GATEWAY_API"
    crds = run(["bash", "-c", script], env=sim_env()).output.strip()
    assert crds, "no Gateway API CRDs in ../shared/crds or .cache/crds (make crds)"
    result = run([str(BIN / "kubectl"), "--context", CONTEXT, "apply", "--server-side", "-f", crds])
    assert result.returncode == 0, result.output
    # Until the API server serves the new kinds an HTTPRoute is refused: "no matches for kind" (CI saw it).
    wait = ["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]
    result = run([str(BIN / "kubectl"), "--context", CONTEXT, *wait])
    assert result.returncode == 0, result.output
