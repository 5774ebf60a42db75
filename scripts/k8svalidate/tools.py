"""The pinned cluster tools that `make tools` put in ./bin (recipes: scripts/tools.conf, docs/tools.md)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.k8svalidate.render import REPO_ROOT


class ToolMissing(RuntimeError):
    """A pinned tool is not in ./bin: `make tools` did not (or could not) install it."""


def bin_dir() -> Path:
    """./bin, or SHOP_BIN when set (tests point it elsewhere)."""
    return Path(os.environ.get("SHOP_BIN") or REPO_ROOT / "bin")


def tool(name: str) -> Path:
    """Path of the pinned tool NAME in ./bin; ToolMissing (saying what to run) when it is not there."""
    path = bin_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolMissing(f"{name} is not in {bin_dir()}: run `make tools` (it says why when it cannot)")
    return path


@dataclass(frozen=True)
class Result:
    """A finished tool run: exit code and both outputs as text."""

    returncode: int
    stdout: str
    stderr: str


def run(
    name: str, *args: str, stdin: str | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> Result:
    """Run the pinned tool NAME with ARGS (no shell); ToolMissing when it is not installed."""
    proc = subprocess.run(
        [str(tool(name)), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def version_line(name: str, *args: str) -> str:
    """First line the tool prints for its version command (for the analyzer headers)."""
    res = run(name, *args, timeout=60)
    lines = (res.stdout or res.stderr).strip().splitlines()
    return lines[0] if lines else "?"
