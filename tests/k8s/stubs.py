"""Stub binaries for running the cluster scripts (`make up|mesh|lab|... DRY_RUN=1`) without a cluster.

Read-only queries (docker info, kind get clusters, kubectl get ...) go to stubs first on PATH that answer
from STUB_* variables, so a test decides whether Docker runs, a cluster exists and answers, which mesh is
installed, which labs are applied, which Secrets and images exist. `kubectl kustomize` goes to the real
kubectl. Nothing is ever downloaded (curl is stubbed out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_KUBECTL = shutil.which("kubectl")
DRY_RUN_NOTICE = (
    "DRY_RUN=1: nothing was changed; the '+' lines above are the commands a real run would execute."
)

STUBS = {
    # docker info prints the memory Docker has; STUB_DOCKER=down simulates a stopped Docker.
    "docker": """#!/bin/sh
[ "$STUB_DOCKER" = down ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
[ "$1" = info ] && { echo "${STUB_MEM:-8300000000}"; exit 0; }
exit 1
""",
    # Nothing is downloaded in these tests, even if a check is broken and a real run goes on.
    "curl": "#!/bin/sh\necho 'curl: stubbed out in tests' >&2\nexit 7\n",
    # kind get clusters lists STUB_CLUSTERS; with STUB_DOCKER=down it fails, as kind does without Docker.
    "kind": """#!/bin/sh
[ "$STUB_DOCKER" = down ] && { echo "ERROR: failed to list clusters" >&2; exit 1; }
[ "$1 $2" = "get clusters" ] && { [ -n "$STUB_CLUSTERS" ] && echo "$STUB_CLUSTERS"; exit 0; }
exit 1
""",
    # Offline rendering goes to the real kubectl; cluster queries answer from STUB_* variables
    # (STUB_API=down: the cluster exists but its API server does not answer).
    "kubectl": """#!/bin/sh
[ "$1" = kustomize ] && exec "$REAL_KUBECTL" "$@"
case "$*" in
  *"get --raw /readyz"*) [ -n "$STUB_CLUSTERS" ] && [ "$STUB_API" != down ] ;;
  *"-n istio-system get deploy istiod"*) [ "$STUB_MESH" = istio ] ;;
  *"get namespace linkerd"*) [ "$STUB_MESH" = linkerd ] ;;
  *"get secret"*) [ -n "$STUB_SECRETS" ] ;;
  *"get service frontend"*) echo NodePort ;;
  *"api-resources"*) printf 'deployments\\nservices\\nvirtualservices.networking.istio.io\\n' ;;
  *"-n ecommerce get "*" -l lab "*) [ -n "$STUB_APPLIED_LABS" ] && printf '%s\\n' $STUB_APPLIED_LABS ;;
  *"-n ecommerce get deployments -o jsonpath="*) printf '%s\\n' $STUB_IMAGES ;;
  *) exit 1 ;;
esac
""",
}


def lab_kinds_arg() -> str:
    """mesh/lab-kinds.txt as scripts/labs.sh passes it to kubectl: the kinds in file order, comma-separated
    (the stubs answer no api-resources, so under DRY_RUN every kind is listed)."""
    lines = (ln.strip() for ln in (ROOT / "mesh" / "lab-kinds.txt").read_text().splitlines())
    return ",".join(ln for ln in lines if ln and not ln.startswith("#"))


def write_stub(bin_dir: Path, name: str, script: str) -> Path:
    """An executable `bin_dir/name` (mode 0755) running `script`; a script without a #! line runs under
    /bin/sh. Returns the path."""
    path = bin_dir / name
    path.write_text(script if script.startswith("#!") else "#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def write_stubs(bin_dir: Path) -> Path:
    """Write the stub binaries into bin_dir (created) and return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in STUBS.items():
        write_stub(bin_dir, name, body)
    return bin_dir


def dry_run_env(stubs: Path, scratch: Path, **env: str) -> dict[str, str]:
    """The environment of a dry run against stub binaries: the stubs in `stubs` first on PATH, DRY_RUN=1
    unless env says otherwise, an empty ./bin (SHOP_BIN) and tool cache under `scratch` (so a student's
    installed tools never shadow the stubs), none of the caller's MESH/LAB/... settings, then `env`."""
    full_env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "REAL_KUBECTL": str(REAL_KUBECTL),
        "SHOP_BIN": str(scratch / "empty-bin"),  # no pinned tools yet: the download is printed
        "SHOP_CACHE": str(scratch / "empty-cache"),  # nor in the tool cache
        "SHOP_SIM_DIR": str(scratch / "no-sim"),  # no simulated cluster (not a developer's sim-up)
        "DRY_RUN": "1",
        "TMPDIR": "/tmp",
        **env,
    }
    for var in ("MESH", "LAB", "S", "CLUSTER_NAME", "NAMESPACE", "MAKEFLAGS", "MFLAGS", "SHOP_SCRIPT_DEPTH"):
        if var not in env:
            full_env.pop(var, None)
    for var in ("SHOP_CLUSTER_CHECKED", "KUBE_CONTEXT"):
        full_env.pop(var, None)
    return full_env


def make(stubs: Path, *args: str, merge_stderr: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` from the repo root in `dry_run_env(stubs, stubs.parent, **env)`. merge_stderr: stderr
    goes into stdout, in the order a terminal shows them."""
    full_env = dry_run_env(stubs, stubs.parent, **env)
    cmd = ["make", "--no-print-directory", *args]
    stderr = subprocess.STDOUT if merge_stderr else subprocess.PIPE
    return subprocess.run(
        cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300
    )


def commands(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The commands a script printed ('+ ' lines), without the '+ '."""
    return [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]
