"""Findings of the real analyzers, and the ONE reviewed allowlist that may accept some of them.

The allowlist is `scripts/k8svalidate/allowlist.yaml`: a list of {code, resource, reason} (optionally
`entry`, an entry-point glob). `code` and `resource` are compared as the analyzer prints them (globs allowed).
An entry without a reason is an error, and so is an entry that accepts nothing any more (stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

ALLOWLIST = Path(__file__).with_name("allowlist.yaml")


@dataclass(frozen=True)
class Finding:
    """One thing an analyzer reports: `code` (e.g. IST0112), `level` (Error, Warning, Info), the
    `resource` it is about (e.g. "VirtualService ecommerce/product"), its `message`, and the `entry` point
    (rendered kustomize combination) it was found in."""

    analyzer: str
    code: str
    level: str
    resource: str
    message: str
    entry: str

    def __str__(self) -> str:
        return f"{self.code} ({self.level}) {self.resource} [{self.entry}]: {self.message}"


@dataclass(frozen=True)
class Allowed:
    """One allowlist entry."""

    code: str
    resource: str
    reason: str
    entry: str = "*"

    def accepts(self, finding: Finding) -> bool:
        return (
            fnmatchcase(finding.code, self.code)
            and fnmatchcase(finding.resource, self.resource)
            and fnmatchcase(finding.entry, self.entry)
        )

    def __str__(self) -> str:
        return f"{self.code} {self.resource}" + ("" if self.entry == "*" else f" [{self.entry}]")


def load_allowlist(path: Path = ALLOWLIST) -> list[Allowed]:
    """The reviewed entries; ValueError for an entry without code, resource or reason."""
    raw: Any = yaml.safe_load(path.read_text()) if path.is_file() else []
    entries: list[Allowed] = []
    for i, item in enumerate(raw or []):
        if not isinstance(item, dict) or not all(
            str(item.get(k) or "").strip() for k in ("code", "resource", "reason")
        ):
            raise ValueError(f"{path.name} entry {i + 1}: needs code, resource and a reason ({item!r})")
        unknown = set(item) - {"code", "resource", "reason", "entry"}
        if unknown:
            raise ValueError(f"{path.name} entry {i + 1}: unknown keys {sorted(unknown)}")
        entries.append(
            Allowed(
                str(item["code"]), str(item["resource"]), str(item["reason"]), str(item.get("entry", "*"))
            )
        )
    return entries


def split(
    findings: list[Finding], allowlist: list[Allowed]
) -> tuple[list[Finding], list[Finding], set[Allowed]]:
    """(not allowed, allowed, allowlist entries that accepted something)."""
    bad: list[Finding] = []
    ok: list[Finding] = []
    used: set[Allowed] = set()
    for f in findings:
        match = next((a for a in allowlist if a.accepts(f)), None)
        if match is None:
            bad.append(f)
        else:
            ok.append(f)
            used.add(match)
    return bad, ok, used
