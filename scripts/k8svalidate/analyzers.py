"""`python -m scripts.k8svalidate.analyzers`: the real upstream tools on our manifests (`make validate`).

Each analyzer prints its name, the tool version, what it ran on and its finding count; every finding not
accepted by the ONE reviewed allowlist (scripts/k8svalidate/allowlist.yaml, with a reason per entry) fails,
and so does an allowlist entry that no longer accepts anything. A tool that `make tools` could not install
fails too, unless it is listed in TOOLS_OPTIONAL (then its analyzer is skipped, saying why).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from scripts.k8svalidate.findings import Allowed, Finding, load_allowlist, split
from scripts.k8svalidate.istio_analyze import (
    ANALYZE,
    MANIFEST,
    AnalyzerError,
    analyze,
    istio_entries,
    istioctl_version,
    manifest_findings,
)
from scripts.k8svalidate.kind_config import ANALYZER as KIND_CONFIG
from scripts.k8svalidate.kind_config import kind_config_findings
from scripts.k8svalidate.tools import ToolMissing, version_line


@dataclass(frozen=True)
class Analyzer:
    """A real tool run over the repo: `run` returns (what it ran on, findings)."""

    name: str
    tool: str
    version: Callable[[], str]
    codes: str  # prefix of the codes it reports (matches allowlist entries to it)
    run: Callable[[], tuple[str, list[Finding]]]


def _istio_analyze() -> tuple[str, list[Finding]]:
    entries = istio_entries()
    findings = [f for name, docs in entries for f in analyze(docs, name)]
    return f"{len(entries)} entry points", findings


def _manifest() -> tuple[str, list[Finding]]:
    return "mesh/istio/install/istio-kind.yaml", manifest_findings()


def _kind() -> tuple[str, list[Finding]]:
    return "kind/cluster.yaml", kind_config_findings()


ANALYZERS = [
    Analyzer(MANIFEST, "istioctl", istioctl_version, "ISTIO-INSTALL", _manifest),
    Analyzer(ANALYZE, "istio-analyze", lambda: version_line(ANALYZE, "--version"), "IST0", _istio_analyze),
    Analyzer(KIND_CONFIG, "kind", lambda: version_line("kind", "version"), "KIND-", _kind),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.k8svalidate.analyzers", description=__doc__)
    parser.add_argument("names", nargs="*", help="only these analyzers (default: all)")
    args = parser.parse_args(argv)
    optional = set(os.environ.get("TOOLS_OPTIONAL", "").split())
    allowlist = load_allowlist()
    ran: list[Analyzer] = []
    used: set[Allowed] = set()
    failed = 0
    for analyzer in ANALYZERS:
        if args.names and analyzer.name not in args.names:
            continue
        try:
            version = analyzer.version()
            target, findings = analyzer.run()
        except ToolMissing as exc:
            if analyzer.tool in optional:
                print(f"SKIP {analyzer.name}: {exc} ({analyzer.tool} is in TOOLS_OPTIONAL)")
                continue
            print(f"FAIL {analyzer.name}: {exc}")
            failed += 1
            continue
        except AnalyzerError as exc:
            print(f"FAIL {analyzer.name}: {exc}")
            failed += 1
            continue
        ran.append(analyzer)
        bad, ok, accepted = split(findings, allowlist)
        used |= accepted
        allowed = f" ({len(ok)} allowlisted)" if ok else ""
        status = "FAIL" if bad else "ok  "
        print(f"{status} {analyzer.name} [{version}] on {target}: {len(bad)} findings{allowed}")
        for f in bad:
            print(f"     {f}")
        failed += bool(bad)
    stale = [a for a in allowlist if a not in used and any(a.code.startswith(r.codes) for r in ran)]
    for a in stale:
        print(f"FAIL allowlist entry accepts nothing any more, remove it: {a}")
    failed += bool(stale)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
