"""Every script in scripts/ passes shellcheck (warnings and errors), sourced helpers followed (the mesh
scripts have their own check in tests/mesh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_script_passes_shellcheck() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = sorted(str(p) for p in (ROOT / "scripts").rglob("*.sh"))
    assert len(scripts) >= 10
    proc = subprocess.run(
        ["shellcheck", "-x", "-P", "SCRIPTDIR", "-S", "warning", *scripts], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
