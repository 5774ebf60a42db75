"""Every shell script in the repo passes shellcheck (warnings and errors), sourced helpers followed: scripts/,
the mesh scripts and labs, .ci/run: every tracked `*.sh` file and every file starting with a sh/bash shebang.

`make test` installs shellcheck (Debian's package, `make system-packages`); without it the check skips on a
developer's machine, saying why, and fails in CI (CI=true), where a skip would hide that it never ran."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHEBANG = re.compile(rb"^#!\s*(/usr)?/bin/(env\s+)?(ba)?sh\b")


def shell_scripts() -> list[str]:
    """Tracked files that are shell scripts, by name or by shebang."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    scripts = []
    for name in filter(None, listed):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        if path.suffix == ".sh" or SHEBANG.match(path.read_bytes()[:64]):
            scripts.append(str(path.relative_to(ROOT)))
    return sorted(scripts)


@pytest.mark.timeout(900)  # ~40 s of CPU, minutes on a loaded machine
def test_every_shell_script_passes_shellcheck() -> None:
    if not shutil.which("shellcheck"):
        assert os.environ.get("CI") != "true", "shellcheck is missing in CI: make system-packages installs it"
        pytest.skip("shellcheck is not installed (make system-packages, or apt-get install shellcheck)")
    scripts = shell_scripts()
    assert {"scripts/lib.sh", "mesh/istio/install.sh", ".ci/run"} <= set(scripts), scripts
    assert any(s.startswith("mesh/linkerd/") for s in scripts)
    proc = subprocess.run(
        ["shellcheck", "-x", "-P", "SCRIPTDIR", "-S", "warning", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,  # ~40 s of CPU; 190 s measured at load 46 on 2 cores
    )
    assert proc.returncode == 0, proc.stdout[-5000:]


def test_shellcheck_finds_a_planted_mistake(tmp_path: Path) -> None:
    """The check above can fail at its level: a `cd` whose failure would go on in the wrong directory (a
    warning) in a planted script is reported."""
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (make system-packages, or apt-get install shellcheck)")
    planted = tmp_path / "planted.sh"
    planted.write_text('#!/usr/bin/env bash\ncd "$1"\nrm -f ./*.tmp\n')
    proc = subprocess.run(
        ["shellcheck", "-S", "warning", str(planted)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "SC2164" in proc.stdout, proc.stdout


# A pipe into `grep -q`: grep exits at the first match, the writer gets SIGPIPE if it writes after that, and
# under `set -o pipefail` (scripts/lib.sh) the pipeline then fails: a match reads as no match, depending on
# output size and timing (make up missed the running shop this way and installed Istio over its NodePort).
PIPE_INTO_GREP_Q = re.compile(r"(?<!\|)\|(?!\|)\s*(?:\\\n\s*)?grep\s+(?:-\w+\s+)*-\w*q")


def pipes_into_grep_q(text: str) -> list[int]:
    """Line numbers where a command's output is piped into `grep -q`."""
    return [text.count("\n", 0, m.start()) + 1 for m in PIPE_INTO_GREP_Q.finditer(text)]


def test_no_script_pipes_into_grep_q() -> None:
    found = [
        f"{name}:{line}" for name in shell_scripts() for line in pipes_into_grep_q((ROOT / name).read_text())
    ]
    assert found == [], 'capture the output first, then grep -q <<<"$out": ' + ", ".join(found)


def test_a_pipe_into_grep_q_is_found() -> None:
    planted = "if kubectl get deployments -o name |\n  grep -qx deployment.apps/frontend; then :; fi\n"
    assert pipes_into_grep_q("x=1\n" + planted) == [2]
    fine = 'kind get clusters | grep -x shop\n[[ -n "$a" ]] || grep -qx shop <<<"$out"\n'
    assert pipes_into_grep_q(fine) == []
