"""`python -m scripts.k8svalidate [NAME...]`: render, validate and cross-check every entry point.

Exit code 0 when everything is valid, 1 otherwise. `--list` prints the entry points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scripts.k8svalidate import crd_dir, crossref_errors, entry_points, k8s_version, render, validate_docs
from scripts.k8svalidate.render import base_for_component


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))


def lab_label_errors(dirs: list[str], docs: list[dict[str, Any]]) -> list[str]:
    """Resources a lab adds must carry `lab: <lab>` so `make lab-reset` can find and delete them."""
    if len(dirs) != 1 or "/labs/" not in dirs[0]:
        return []
    lab = Path(dirs[0]).name
    before = {_key(d) for d in render(str(base_for_component(dirs[0])))}
    return [
        f"{k[0]} {k[1]}/{k[2]}: added by lab {lab} but has no label lab: {lab}"
        for d in docs
        if (k := _key(d)) not in before and ((d.get("metadata") or {}).get("labels") or {}).get("lab") != lab
    ]


def check(name: str, dirs: list[str]) -> list[str]:
    try:
        docs = render(dirs if len(dirs) > 1 else dirs[0])
    except (RuntimeError, ValueError) as exc:
        return [str(exc)]
    return validate_docs(docs) + crossref_errors(docs) + lab_label_errors(dirs, docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.k8svalidate", description=__doc__)
    parser.add_argument("names", nargs="*", help="only these entry points (default: all)")
    parser.add_argument("--list", action="store_true", help="list the entry points and exit")
    args = parser.parse_args(argv)
    points = [(n, d) for n, d in entry_points() if not args.names or n in args.names]
    if args.list:
        for name, dirs in points:
            print(f"{name}: {' + '.join(dirs)}")
        return 0
    if not points:
        print("no entry points found", file=sys.stderr)
        return 1
    print(f"Kubernetes schemas v{k8s_version()} (strict), CRDs from {crd_dir()}")
    failed = 0
    for name, dirs in points:
        errors = check(name, dirs)
        print(f"{'FAIL' if errors else 'ok  '} {name}")
        for err in errors:
            print(f"     {err}")
        failed += bool(errors)
    print(f"{len(points) - failed}/{len(points)} entry points valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
