"""`python -m scripts.k8svalidate [NAME...]`: render every entry point, run every checker on it.

Prints each entry point (ok/FAIL with its findings, each tagged with the checker that found it), then each
checker with the number of entry points it ran on and its findings. Exit code 0 when there are no
findings, 1 otherwise. `--list` prints the entry points, `--checkers` the checkers.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from scripts.k8svalidate import crd_dir, entry_points, k8s_version, render
from scripts.k8svalidate.checks import Checker, Target, all_checkers


def run_checkers(name: str, dirs: list[str], checkers: list[Checker]) -> dict[str, list[str]]:
    """Checker name -> findings, for the checkers that apply to this entry point.

    When the entry point does not render, the only key is `render` with kustomize's error.
    """
    try:
        docs = render(dirs if len(dirs) > 1 else dirs[0])
    except (RuntimeError, ValueError) as exc:
        return {"render": [str(exc)]}
    target = Target(name, tuple(dirs), docs)
    return {c.name: c.run(target) for c in checkers if c.applies(target)}


def tagged(found: dict[str, list[str]]) -> list[str]:
    return [f"[{checker}] {finding}" for checker, findings in found.items() for finding in findings]


def check(name: str, dirs: list[str]) -> list[str]:
    """Every finding of every checker on one entry point, tagged `[checker] ...`; [] when valid."""
    return tagged(run_checkers(name, dirs, all_checkers()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.k8svalidate", description=__doc__)
    parser.add_argument("names", nargs="*", help="only these entry points (default: all)")
    parser.add_argument("--list", action="store_true", help="list the entry points and exit")
    parser.add_argument("--checkers", action="store_true", help="list the checkers and exit")
    args = parser.parse_args(argv)
    checkers = all_checkers()
    if args.checkers:
        for c in checkers:
            print(f"{c.name}  ({c.mesh or 'every'} entry point)")
        return 0
    points = [(n, d) for n, d in entry_points() if not args.names or n in args.names]
    if args.list:
        for name, dirs in points:
            print(f"{name}: {' + '.join(dirs)}")
        return 0
    if not points:
        print("no entry points found", file=sys.stderr)
        return 1
    print(f"Kubernetes schemas v{k8s_version()} (strict), CRDs from {crd_dir()}")
    runs: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    failed = 0
    for name, dirs in points:
        found = run_checkers(name, dirs, checkers)
        errors = tagged(found)
        runs.update(found.keys())
        findings.update({checker: len(fs) for checker, fs in found.items()})
        print(f"{'FAIL' if errors else 'ok  '} {name}")
        for err in errors:
            print(f"     {err}")
        failed += bool(errors)
    width = max(len(c.name) for c in checkers)
    print(f"\n{'checker':<{width}}  entry points  findings")
    for c in checkers:
        print(f"{c.name:<{width}}  {runs[c.name]:>12}  {findings[c.name]:>8}")
    print(f"\n{len(points) - failed}/{len(points)} entry points valid, {sum(findings.values())} findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
