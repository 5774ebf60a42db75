"""The guides' commands, run against the simulated cluster as a student types them.

The commands come from the guides themselves, read by the offline guide checker's extractor (tests/docs/
guides.py: markdown-it for the Markdown, bash -n and bashlex for each shell block). What runs here:
`make up|mesh|lab|lab-reset|status` (dry runs too), `kubectl get` and `kubectl apply -f <a repo file>`. What
does not is classified with its reason (NOT_RUN: a data plane, a running container, an editor). Every command
run is recorded (RAN), and tests/sim/test_9_guides.py fails when a runnable command of a guide never ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.docs import guides as extractor
from tests.docs.guides import Command, Doc
from tests.k8s.targets import NO_CLUSTER_NEEDED
from tests.sim.helpers import BIN, CONTEXT, ROOT, Result, current_mesh, make, run, tool

RUN_MAKE_TARGETS = {"up", "mesh", "lab", "lab-reset", "status"}
CLIS = ("make", "kubectl", "istioctl", "linkerd", "curl", "openssl")
NOT_RUN = {
    "curl": "sends traffic through the shop: needs running containers (a kind cluster)",
    "openssl": "talks TLS to the gateway's running Envoy",
    "make verify": "the live checks send traffic: make verify on a kind cluster",
    "make dashboards": "port-forwards to dashboard pods: needs running containers",
    "make load": "drives traffic through the shop",
    "make logs": "reads container logs",
    "make dev": "runs the shop locally (tests/integration does)",
    "make test": "this suite is part of it",
    "make down": "ends the cluster; tests/sim/test_8_fresh_up.py runs it",
    "kubectl exec": "runs a command in a container",
    "kubectl logs": "reads container logs",
    "kubectl run": "starts a pod and talks to its container",
    "kubectl debug": "attaches an ephemeral container",
    "kubectl edit": "opens an editor (the lab file applies the same object)",
    "istioctl x": "asks the pod's running sidecar and istiod's debug endpoints",
    "linkerd viz": "asks viz's running pods and the proxies' metrics",
    "linkerd diagnostics": "asks running proxies and the destination controller",
}
LINKERD_CLI = tool("linkerd") is not None
NO_LINKERD = (
    "no linkerd CLI here (the Go module proxy serves no github.com/linkerd/linkerd2 version, docs/tools.md): "
    "make mesh MESH=linkerd cannot run, so neither can the Linkerd guides' commands"
)
# (guide:line, command) of every guide command this session ran.
RAN: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class GuideCommand:
    command: Command

    @property
    def argv(self) -> tuple[str, ...]:
        return self.command.argv

    @property
    def text(self) -> str:
        return " ".join(self.argv)

    @property
    def where(self) -> str:
        return self.command.block.where

    def settings(self) -> dict[str, str]:
        return dict(a.split("=", 1) for a in self.argv[1:] if "=" in a and not a.startswith("-"))

    def target(self) -> str | None:
        rest = [a for a in self.argv[1:] if "=" not in a and not a.startswith("-")]
        return rest[0] if rest else None

    def verb(self) -> str | None:
        """kubectl's verb (after global flags such as -n NS)."""
        args = list(self.argv[1:])
        while args and args[0].startswith("-"):
            flag = args.pop(0)
            if "=" not in flag and flag in ("-n", "--namespace", "--context") and args:
                args.pop(0)
        return args[0] if args else None

    def runs(self) -> bool:
        name = self.command.name
        if name == "make":
            return self.target() in RUN_MAKE_TARGETS
        if name == "kubectl" and "--context" not in self.argv:
            verb = self.verb()
            if verb == "get":
                return not any(self.command.expanded)
            if verb == "rollout":  # `rollout status`: a wait kwok's simulated pods satisfy
                return "status" in self.argv
            return (
                verb == "apply"
                and "-f" in self.argv
                and (ROOT / self.argv[self.argv.index("-f") + 1]).exists()
            )
        return False

    def reason_not_run(self) -> str | None:
        name = self.command.name
        if name in ("curl", "openssl"):
            return NOT_RUN[name]
        if name == "kubectl" and "--context" in self.argv:
            return "names the kind cluster's context (kind-shop) itself"
        second = self.target() if name == "make" else self.verb() if name == "kubectl" else self.argv[1]
        if f"{name} {second}" in NOT_RUN:
            return NOT_RUN[f"{name} {second}"]
        if name == "make" and second in NO_CLUSTER_NEEDED:
            # Local processes (benchmarks, chaos, mutation, FerretDB): make test runs them, not on a cluster.
            return f"needs no cluster: {NO_CLUSTER_NEEDED[second]}"
        return None

    def needs_linkerd(self) -> bool:
        return self.settings().get("MESH") == "linkerd" and self.settings().get("DRY_RUN") != "1"


def guide_commands(path: Path) -> list[GuideCommand]:
    doc = Doc.read(path)
    return [
        GuideCommand(c)
        for block in extractor.shell_blocks(doc)
        for c in extractor.parse_commands(block)[0]
        if c.name in CLIS
    ]


def guides_with_commands() -> list[Path]:
    return [p for p in extractor.markdown_files() if guide_commands(p)]


def run_guide(path: Path, after: Callable[[GuideCommand, Result], None] | None = None) -> list[str]:
    """Run the guide's runnable commands in its order; `after(command, result)` checks what each one did."""
    done = []
    for c in guide_commands(path):
        if not c.runs():
            continue
        if c.needs_linkerd() and not LINKERD_CLI:
            continue
        if c.command.name == "make":
            mesh = current_mesh()
            if c.target() == "up" and mesh != "none" and c.settings().get("MESH", "none") != mesh:
                # `make up MESH=x` over another mesh: the guide means a first start, a new cluster (over no
                # mesh, make up installs the mesh into the running cluster, as on kind).
                make("down")
            result = make(*c.argv[1:])
        else:
            result = run([str(BIN / "kubectl"), "--context", CONTEXT, *c.argv[1:]])
            assert result.returncode == 0, f"{c.where}: `{c.text}` failed:\n{result.tail()}"
        RAN.add((c.where, c.text))
        done.append(c.text)
        if after is not None:
            after(c, result)
    return done
