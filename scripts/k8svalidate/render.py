"""Render kustomize directories (and lab Components on top of their mesh overlay) with kubectl."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@cache
def versions() -> dict[str, str]:
    """scripts/versions.env as a dict (KEY=value lines)."""
    out: dict[str, str] = {}
    for line in (REPO_ROOT / "scripts" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _abs(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def kustomization_file(directory: str | Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        f = _abs(directory) / name
        if f.is_file():
            return f
    return None


def kustomization_kind(directory: str | Path) -> str:
    """'Kustomization' or 'Component' (a file without `kind:` is a Kustomization)."""
    f = kustomization_file(directory)
    if f is None:
        raise FileNotFoundError(f"no kustomization.yaml in {directory}")
    data = yaml.safe_load(f.read_text()) or {}
    return str(data.get("kind", "Kustomization"))


def kubectl() -> str:
    """The pinned ./bin/kubectl when `make up` installed it, else kubectl on PATH."""
    local = REPO_ROOT / "bin" / "kubectl"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: install it or run `make tools` (puts a pinned one in ./bin)")
    return found


def base_for_component(directory: str | Path) -> Path:
    """The Kustomization a Component is rendered on: mesh/<mesh>/overlay for mesh labs, else k8s/base."""
    rel = _abs(directory).resolve().relative_to(REPO_ROOT)
    if len(rel.parts) >= 2 and rel.parts[0] == "mesh":
        return REPO_ROOT / "mesh" / rel.parts[1] / "overlay"
    return REPO_ROOT / "k8s" / "base"


def _kustomize(directory: Path) -> str:
    cmd = [kubectl(), "kustomize", str(directory)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        rel = os.path.relpath(directory, REPO_ROOT)
        raise RuntimeError(f"kubectl kustomize {rel} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def render_text(dirs: str | Path | list[str] | list[Path]) -> str:
    """YAML text of `kubectl kustomize` for one Kustomization, or Components on their base."""
    paths = [_abs(d) for d in ([dirs] if isinstance(dirs, str | Path) else dirs)]
    if not paths:
        raise ValueError("render() needs at least one directory")
    kinds = [kustomization_kind(p) for p in paths]
    if len(paths) == 1 and kinds[0] != "Component":
        return _kustomize(paths[0])
    if any(k != "Component" for k in kinds):
        raise ValueError("several directories can only be Components (rendered on their mesh overlay)")
    bases = {base_for_component(p) for p in paths}
    if len(bases) != 1:
        raise ValueError(f"components belong to different overlays: {sorted(map(str, bases))}")
    base = bases.pop()
    # kustomize refuses absolute paths, so the temporary kustomization lives inside the repo.
    cache_dir = REPO_ROOT / ".cache" / "render"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        kust = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(base, tmp)],
            "components": [os.path.relpath(p, tmp) for p in paths],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kust))
        return _kustomize(Path(tmp))


def render(dirs: str | Path | list[str] | list[Path]) -> list[dict[str, Any]]:
    """Rendered documents of a Kustomization dir, or of lab Components on their mesh overlay."""
    return [d for d in yaml.safe_load_all(render_text(dirs)) if d]


def _rel(p: Path) -> str:
    return p.relative_to(REPO_ROOT).as_posix()


def _kustomize_dirs(top: Path) -> list[Path]:
    found = set()
    for name in KUSTOMIZATION_FILES:
        found.update(f.parent for f in top.rglob(name))
    return sorted(found)


def standalone_labs(mesh_dir: Path) -> set[str]:
    f = mesh_dir / "labs" / "standalone.txt"
    if not f.is_file():
        return set()
    return {ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def entry_points() -> list[tuple[str, list[str]]]:
    """(name, dirs) for everything `make validate` renders.

    Every Kustomization under k8s/ and mesh/; each lab Component alone on its mesh overlay; and per
    mesh all labs together except those listed in mesh/<mesh>/labs/standalone.txt.
    """
    out: list[tuple[str, list[str]]] = []
    for top in ("k8s", "mesh"):
        root = REPO_ROOT / top
        if not root.is_dir():
            continue
        for d in _kustomize_dirs(root):
            if ".cache" in d.parts:
                continue
            rel = d.relative_to(REPO_ROOT).parts
            is_lab = len(rel) >= 4 and rel[0] == "mesh" and rel[2] == "labs"
            if kustomization_kind(d) != "Component" and not is_lab:
                out.append((_rel(d), [_rel(d)]))
    mesh_root = REPO_ROOT / "mesh"
    for mesh_dir in sorted(p for p in mesh_root.glob("*") if p.is_dir()) if mesh_root.is_dir() else []:
        labs = sorted(p.parent for p in (mesh_dir / "labs").glob("*/kustomization.yaml"))
        for lab in labs:
            out.append((f"{mesh_dir.name}/lab/{lab.name}", [_rel(lab)]))
        skip = standalone_labs(mesh_dir)
        together = [_rel(lab) for lab in labs if lab.name not in skip]
        if len(together) > 1:
            out.append((f"{mesh_dir.name}/all-labs", together))
    return out
