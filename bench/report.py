"""Figures of a run: per case the median over rounds, the spread, CPU per request, ratio to its reference,
the targets met or missed; as a text table, Markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.cases import BY_NAME, TARGETS, Target, anon_ceiling_mb
from bench.result import Result


@dataclass(frozen=True)
class Measurement:
    """One round of one case: `cpu_seconds` of every process under test, `proxy_cpu_seconds` of Envoy."""

    store: str
    tree: str
    case: str
    round: int
    result: Result
    cpu_seconds: float
    proxy_cpu_seconds: float = 0.0
    cpu_by_process: dict[str, float] = field(default_factory=dict)  # seconds, per service (and proxy)


@dataclass(frozen=True)
class Row:
    store: str
    tree: str
    case: str
    label: str
    rounds: int
    rate: float  # median requests (journeys) per second
    rate_low: float
    rate_high: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # CPU milliseconds per request, every process under test (shop, proxies)
    proxy_cpu_ms: float
    errors: int
    reference: str | None
    ratio: float | None  # rate / the reference's rate (same store and tree), None without a reference
    cpu_ms_by_process: dict[str, float] = field(default_factory=dict)  # CPU ms per request, per process


def summarize(measurements: Iterable[Measurement]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.store, m.tree, m.case), []).append(m)
    rates = {key: statistics.median(m.result.rate for m in group) for key, group in groups.items()}
    rows = []
    for (store, tree, name), group in groups.items():
        case = BY_NAME[name]
        requests = sum(m.result.requests for m in group)
        ratio = None
        if case.reference is not None:
            # A reference measured only on the current code (bare, proxies) serves every tree.
            reference_rate = rates.get((store, tree, case.reference)) or _any_tree(
                rates, store, case.reference
            )
            if reference_rate:
                ratio = rates[(store, tree, name)] / reference_rate
        rows.append(
            Row(
                store=store,
                tree=tree,
                case=name,
                label=case.label,
                rounds=len(group),
                rate=rates[(store, tree, name)],
                rate_low=min(m.result.rate for m in group),
                rate_high=max(m.result.rate for m in group),
                p50_ms=statistics.median(m.result.p50_ms for m in group),
                p99_ms=statistics.median(m.result.p99_ms for m in group),
                cpu_ms=1000 * sum(m.cpu_seconds for m in group) / requests if requests else math.nan,
                proxy_cpu_ms=1000 * sum(m.proxy_cpu_seconds for m in group) / requests
                if requests
                else math.nan,
                errors=sum(m.result.errors for m in group),
                reference=case.reference,
                ratio=ratio,
                cpu_ms_by_process=_by_process(group, requests),
            )
        )
    return rows


def _by_process(group: Sequence[Measurement], requests: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for m in group:
        for name, seconds in m.cpu_by_process.items():
            totals[name] = totals.get(name, 0.0) + seconds
    return {name: 1000 * seconds / requests for name, seconds in totals.items()} if requests else {}


def process_table(rows: Sequence[Row], least_ms: float = 0.1) -> str:
    """CPU milliseconds per request of each process that spent at least `least_ms` on it: where a case's
    CPU goes (the frontend's own work against product's, order's share of a journey)."""
    lines = ["| store | code | case | CPU ms per request, by process |", "|---|---|---|---|"]
    for row in rows:
        parts = sorted(row.cpu_ms_by_process.items(), key=lambda item: -item[1])
        shown = ", ".join(f"{name} {ms:.2f}" for name, ms in parts if ms >= least_ms)
        lines.append(f"| {row.store} | {row.tree} | {row.case} | {shown} |")
    return "\n".join(lines)


def _any_tree(rates: dict[tuple[str, str, str], float], store: str, case: str) -> float | None:
    found = [rate for (s, _, c), rate in rates.items() if s == store and c == case]
    return found[0] if found else None


@dataclass(frozen=True)
class Verdict:
    target: Target
    store: str
    tree: str
    value: float
    met: bool


def verdicts(rows: Sequence[Row], rss: dict[tuple[str, str], dict[str, float]]) -> list[Verdict]:
    """Each target against each store and tree it was measured on (`rss`: (store, tree) -> service -> MB)."""
    found = []
    for target in TARGETS:
        if target.kind == "rss_mb":
            for (store, tree), sizes in rss.items():
                services = {k: v for k, v in sizes.items() if k != "database"}
                if services:
                    worst = max(services.values())
                    found.append(Verdict(target, store, tree, worst, worst <= target.limit))
            continue
        for row in rows:
            if row.case != target.case:
                continue
            if target.kind == "ratio" and row.ratio is not None:
                found.append(Verdict(target, row.store, row.tree, row.ratio, row.ratio >= target.limit))
            elif target.kind == "p99_ms":
                found.append(Verdict(target, row.store, row.tree, row.p99_ms, row.p99_ms <= target.limit))
    return found


def over_ceiling(sizes: dict[str, float]) -> list[str]:
    """The services whose idle anonymous memory (MB, usage.anon_mb) is past their ceiling (bench/cases.py
    `ANON_CEILING_MB`)."""
    return [
        f"{name} idle anonymous memory {size:.1f} MB is past its ceiling of {anon_ceiling_mb(name):.1f} MB"
        for name, size in sizes.items()
        if name != "database" and size > anon_ceiling_mb(name)
    ]


def _number(value: float, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    """Markdown table (also readable as plain text)."""
    header = (
        "| store | code | case | req/s (median) | spread | p50 ms | p99 ms | CPU ms/req | of it proxy "
        "| ratio | errors |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in rows:
        spread = f"{_number(row.rate_low)}-{_number(row.rate_high)}"
        ratio = f"{row.ratio:.0%} of {row.reference}" if row.ratio is not None else ""
        proxy = _number(row.proxy_cpu_ms, 2) if row.proxy_cpu_ms else ""
        lines.append(
            f"| {row.store} | {row.tree} | {row.label} | {_number(row.rate, 1 if row.rate < 100 else 0)} "
            f"| {spread} | {_number(row.p50_ms, 1)} | {_number(row.p99_ms, 1)} | {_number(row.cpu_ms, 2)} "
            f"| {proxy} | {ratio} | {row.errors} |"
        )
    return "\n".join(lines)


def rss_table(
    idle: dict[tuple[str, str], dict[str, float]],
    loaded: dict[tuple[str, str], dict[str, float]],
    anon: dict[tuple[str, str], dict[str, float]] | None = None,
) -> str:
    """Per (store, tree) and process: `idle RSS (idle anonymous) / RSS after the run`, MB."""
    names = sorted({name for sizes in idle.values() for name in sizes})
    lines = ["| store | code | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 2)]
    for key, sizes in idle.items():
        after, own = loaded.get(key, {}), (anon or {}).get(key, {})
        cells = [
            f"{_number(sizes.get(n, math.nan))}"
            + (f" ({_number(own[n], 1)})" if n in own else "")
            + f" / {_number(after.get(n, math.nan))}"
            for n in names
        ]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_lines(found: Sequence[Verdict]) -> list[str]:
    lines = []
    for v in found:
        unit = {"ratio": "", "p99_ms": " ms", "rss_mb": " MB"}[v.target.kind]
        value = f"{v.value:.0%}" if v.target.kind == "ratio" else f"{v.value:.0f}{unit}"
        lines.append(f"{'met   ' if v.met else 'MISSED'} {v.target.text}: {value} ({v.store}, {v.tree})")
    return lines


def write_json(
    path: Path, rows: Sequence[Row], measurements: Sequence[Measurement], meta: dict[str, object]
) -> None:
    data = {
        "meta": meta,
        "rows": [asdict(row) for row in rows],
        "measurements": [asdict(m) for m in measurements],
    }
    path.write_text(json.dumps(data, indent=2, default=str))


def chart(path: Path, rows: Sequence[Row], title: str) -> None:
    """Bars of req/s per case (one bar per store and code), the spread as error bars; p99 on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sorted({(row.store, row.tree) for row in rows})
    cases = [name for name in BY_NAME if any(row.case == name for row in rows)]
    by_key = {(row.store, row.tree, row.case): row for row in rows}
    height = 0.8 / max(1, len(series))
    figure, (rate_axis, p99_axis) = plt.subplots(
        1, 2, figsize=(14, 0.6 * len(cases) * max(1, len(series)) ** 0.5 + 2.5), sharey=True
    )
    for index, (store, tree) in enumerate(series):
        positions, rates, low, high, p99 = [], [], [], [], []
        for position, name in enumerate(cases):
            row = by_key.get((store, tree, name))
            if row is None:
                continue
            positions.append(position + index * height)
            rates.append(row.rate)
            low.append(row.rate - row.rate_low)
            high.append(row.rate_high - row.rate)
            p99.append(row.p99_ms)
        label = f"{tree} ({store})"
        rate_axis.barh(positions, rates, height, xerr=[low, high], label=label, capsize=2)
        p99_axis.barh(positions, p99, height, label=label)
    labels = [BY_NAME[name].label for name in cases]
    rate_axis.set_yticks([p + height * (len(series) - 1) / 2 for p in range(len(cases))], labels, fontsize=8)
    rate_axis.invert_yaxis()
    rate_axis.set_xlabel("requests per second (journeys/s for the checkout journey), median of rounds")
    rate_axis.set_xscale("log")
    p99_axis.set_xlabel("p99 latency, ms (median of rounds)")
    p99_axis.set_xscale("log")
    rate_axis.legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
