"""kind's own loader and validator on kind/cluster.yaml (not only our schema).

kind has no "validate only" command and its loader is internal, so `kind create cluster --config` runs for
real against a stand-in `docker` that answers the provider checks and stops kind at its first container step:
kind strictly decodes the file (unknown fields fail), applies its defaults and runs its validation (node
roles, images, port mappings, networking) before it asks for the node image. Reaching that step is the pass;
any error before it is kind's verdict on the file. Nothing is created.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scripts.k8svalidate.findings import Finding
from scripts.k8svalidate.render import REPO_ROOT
from scripts.k8svalidate.tools import run

ANALYZER = "kind config"
CONFIG = REPO_ROOT / "kind" / "cluster.yaml"

# Answers kind's docker provider up to its first container step (`docker inspect --type=image`), records the
# node image kind asks for, then refuses everything (so kind stops and removes nothing real).
_STAND_IN_DOCKER = """#!/bin/sh
case "$1" in
  -v) echo "Docker version 0.0.0 (stand-in for make validate)" ;;
  info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,\
"CPUShares":true,"SecurityOptions":["name=seccomp,profile=builtin","name=cgroupns"]}' ;;
  ps) ;;
  inspect) [ "$2" = "--type=image" ] && echo "$3" >>"$(dirname "$0")/node-images" ; exit 1 ;;
  pull) exit 1 ;;
  *) echo "stand-in docker: no $1 here" >&2; exit 1 ;;
esac
"""


def kind_config_findings(config: Path = CONFIG) -> list[Finding]:
    """kind's errors for `config` as findings (KIND-CONFIG); [] when kind accepts it."""
    rel = config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT) else config
    with tempfile.TemporaryDirectory(prefix="kind-config-") as tmp:
        docker = Path(tmp) / "docker"
        docker.write_text(_STAND_IN_DOCKER)
        docker.chmod(0o755)
        res = run(
            "kind",
            "create",
            "cluster",
            "--config",
            str(config),
            timeout=120,
            env={
                "PATH": f"{tmp}:{os.environ.get('PATH', '')}",
                "KIND_EXPERIMENTAL_PROVIDER": "docker",
                "KUBECONFIG": str(Path(tmp) / "kubeconfig"),
            },
        )
        images_file = Path(tmp) / "node-images"
        asked = images_file.read_text().split() if images_file.is_file() else []
    if asked:
        return []
    lines = res.stderr.strip().splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("ERROR")), max(len(lines) - 1, 0))
    message = " ".join(ln.strip() for ln in lines[first : first + 4]).removeprefix("ERROR: ")
    message = message or f"kind exited {res.returncode} without a reason"
    return [Finding(ANALYZER, "KIND-CONFIG", "Error", f"kind Cluster {rel}", message, str(rel))]
