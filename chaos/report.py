"""From a chaos run's raw record to its report: windows, recovery, SLO verdicts, Markdown and a PNG.

Windows: *before* holds the requests that ended before the first fault (steady state, every shopper
spawned), *after* those that started after the last fault ended, *during* the rest (pauses between faults
included). A fault ends when what it broke is back: a killed service ready again, the database
listening, a proxy fault cleared; until then it is the fault's *outage*.

Time to recover, per fault: from the end of the fault (the broken part is back) to the first moment t
after which a RECOVERY_WINDOW of requests looks like the steady state again: no more failures than before
(at least 1 % allowed) and at least RECOVERY_SHARE of the steady-state rate of successful requests. It is
what the shop itself adds to the outage: reconnecting, settling, clients retrying; 0 means it was back at
once (or never noticed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.audit import Audit
from chaos.scenario import SLO_NAMES, Scenario

RECOVERY_WINDOW = 5.0  # seconds
RECOVERY_SHARE = 0.7  # of the steady-state rate of successful requests


@dataclass(frozen=True)
class Request:
    start: float
    end: float
    name: str
    status: int
    ok: bool
    order_id: str

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


@dataclass(frozen=True)
class FaultWindow:
    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Timeline:
    load_start: float
    steady_start: float  # every shopper spawned
    faults: tuple[FaultWindow, ...]
    load_end: float


@dataclass(frozen=True)
class WindowStats:
    name: str
    seconds: float
    requests: int
    success_rate: float
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True)
class Verdict:
    name: str
    threshold: float
    value: float | None  # None: could not be measured (a miss)
    kind: str
    enforced: bool = True  # False: reported, but a miss does not fail the run (Scenario.reported_only)

    @property
    def missed(self) -> bool:
        """A miss that fails the run."""
        return self.enforced and not self.ok

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.kind == "min" else self.value <= self.threshold


def read_requests(path: Path) -> list[Request]:
    with path.open() as handle:
        return [
            Request(
                float(r["start"]), float(r["end"]), r["name"], int(r["status"]), r["ok"] == "1", r["order_id"]
            )
            for r in csv.DictReader(handle)
        ]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def window_stats(name: str, inside: list[Request], start: float, end: float) -> WindowStats:
    latencies = [r.ms for r in inside]
    ok = sum(r.ok for r in inside)
    return WindowStats(
        name,
        max(0.0, end - start),
        len(inside),
        ok / len(inside) if inside else 1.0,
        percentile(latencies, 0.50),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
    )


def windows(requests: list[Request], timeline: Timeline) -> list[WindowStats]:
    first, last = timeline.faults[0].start, timeline.faults[-1].end
    before = [r for r in requests if timeline.steady_start <= r.start and r.end < first]
    after = [r for r in requests if r.start >= last]
    during = [r for r in requests if r.start >= timeline.steady_start and r.end >= first and r.start < last]
    return [
        window_stats("before", before, timeline.steady_start, first),
        window_stats("during", during, first, last),
        window_stats("after", after, last, timeline.load_end),
    ]


def recovery_seconds(requests: list[Request], timeline: Timeline, fault: FaultWindow) -> float | None:
    """Seconds from the fault's end until the shop looks like its steady state again; None if it did not
    before the next fault started (or the load ended)."""
    before = [r for r in requests if timeline.steady_start <= r.start and r.end < timeline.faults[0].start]
    span = max(1.0, timeline.faults[0].start - timeline.steady_start)
    steady_rate = sum(r.ok for r in before) / span
    steady_failures = 1 - (sum(r.ok for r in before) / len(before)) if before else 0.0
    allowed = max(0.01, steady_failures)
    # Only until the next fault starts: its own failures are not this fault's (None: not recovered by then).
    horizon = min([f.start for f in timeline.faults if f.start > fault.start] + [timeline.load_end])
    t = fault.end
    while t + RECOVERY_WINDOW <= horizon:
        inside = [r for r in requests if t <= r.start < t + RECOVERY_WINDOW and r.end < horizon]
        failures = sum(not r.ok for r in inside)
        rate = (len(inside) - failures) / RECOVERY_WINDOW
        if inside and failures / len(inside) <= allowed and rate >= RECOVERY_SHARE * steady_rate:
            return round(t - fault.end, 1)
        t += 0.5
    return None


def verdicts(
    scenario: Scenario, stats: list[WindowStats], recoveries: list[float | None], audit: Audit | None
) -> list[Verdict]:
    by_name = {s.name: s for s in stats}
    measured: dict[str, float | None] = {
        "success_rate_before": by_name["before"].success_rate,
        "success_rate_after": by_name["after"].success_rate,
        "p95_after_ms": by_name["after"].p95,
        "recovery_seconds": None if any(r is None for r in recoveries) else max(recoveries, default=0.0),  # type: ignore[type-var]
    }
    for name in (
        "double_charges",
        "charges_without_paid_order",
        "paid_orders_lost",
        "leaked_reservations",
        "open_orders",
        "stock_drift",
    ):
        measured[name] = None if audit is None else float(getattr(audit, name))
    return [
        Verdict(
            name, scenario.slo[name], measured[name], SLO_NAMES[name][1], name not in scenario.reported_only
        )
        for name in SLO_NAMES
    ]


def result_line(results: list[Verdict]) -> str:
    missed = [v.name for v in results if v.missed]
    reported = [v.name for v in results if not v.ok and not v.enforced]
    line = "MISSED " + ", ".join(missed) if missed else "every SLO that fails the run met"
    if not missed and not reported:
        return "all SLOs met"
    return line + (f" (missed, reported only: {', '.join(reported)})" if reported else "")


def verdict_word(verdict: Verdict) -> str:
    if verdict.ok:
        return "met"
    return "MISSED" if verdict.enforced else "missed (reported only)"


def _num(value: float | None, name: str) -> str:
    if value is None:
        return "not measured"
    if name.startswith("success_rate"):
        return f"{value:.2%}"
    if name.endswith("_ms"):
        return f"{value:.0f} ms"
    if name.endswith("_seconds"):
        return f"{value:.1f} s"
    return f"{value:.0f}"


def markdown(
    scenario: Scenario,
    facts: dict[str, Any],
    timeline: Timeline,
    stats: list[WindowStats],
    recoveries: list[float | None],
    audit: Audit | None,
    results: list[Verdict],
) -> str:
    lines = [
        f"# Chaos run: {scenario.name}",
        "",
        scenario.description,
        "",
        f"**Result: {result_line(results)}**",
        "",
        "| run | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    lines += [
        "",
        "## SLOs (thresholds: "
        + (f"`chaos/scenarios/{scenario.name}.yaml`" if scenario.path else "the scenario")
        + ")",
        "",
        "| SLO | threshold | measured | verdict |",
        "|---|---|---|---|",
    ]
    for v in results:
        bound = (">= " if v.kind == "min" else "<= ") + _num(v.threshold, v.name)
        lines.append(
            f"| {v.name}: {SLO_NAMES[v.name][0]} | {bound} | {_num(v.value, v.name)} | "
            f"{'**MISSED**' if v.missed else verdict_word(v)} |"
        )
    lines += [
        "",
        "## Latency and success, before / during / after the faults",
        "",
        "| window | seconds | requests | success rate | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        lines.append(
            f"| {s.name} | {s.seconds:.0f} | {s.requests} | {s.success_rate:.2%} | {s.p50:.0f} ms | "
            f"{s.p95:.0f} ms | {s.p99:.0f} ms |"
        )
    lines += [
        "",
        "## Faults",
        "",
        "| fault | at (s) | outage: until it was back (s) | time to recover after that (s) |",
        "|---|---|---|---|",
    ]
    for fault, recovery in zip(timeline.faults, recoveries, strict=True):
        recovered = "not recovered" if recovery is None else f"{recovery:.1f}"
        lines.append(
            f"| {fault.label} | {fault.start - timeline.load_start:.0f} | {fault.end - fault.start:.1f} | "
            f"{recovered} |"
        )
    lines += ["", "## Data audit (orders vs charges vs stock, read from the databases)", ""]
    if audit is None:
        lines.append("Not audited: no database URL (see chaos/README.md).")
    else:
        lines += [
            "| check | count |",
            "|---|---|",
            f"| orders (by status) | {audit.orders} ({_counts(audit.orders_by_status)}) |",
            f"| payments (by status) | {sum(audit.payments_by_status.values())} "
            f"({_counts(audit.payments_by_status)}) |",
            f"| double charges | {audit.double_charges} |",
            f"| charges without a paid order | {audit.charges_without_paid_order} |",
            f"| paid orders lost | {audit.paid_orders_lost} |",
            f"| leaked reservations | {audit.leaked_reservations} |",
            f"| open orders after the settle bound | {audit.open_orders} |",
            f"| stock drift (units) | {audit.stock_drift} |",
        ]
        if audit.findings:
            lines += ["", "Findings:", ""]
            lines += [f"- {finding}" for finding in audit.findings[:30]]
            if len(audit.findings) > 30:
                lines.append(f"- ... and {len(audit.findings) - 30} more (audit.json)")
    lines += ["", "![throughput, error rate and p95 over time; faults shaded](plot.png)", ""]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def plot(requests: list[Request], timeline: Timeline, path: Path, title: str) -> None:
    """Throughput (ok and failed requests/s), error rate and rolling p95 over time, faults shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = timeline.load_start
    seconds = max(1, math.ceil(timeline.load_end - origin))
    ok, failed = [0] * seconds, [0] * seconds
    latencies: list[list[float]] = [[] for _ in range(seconds)]
    for r in requests:
        index = int(r.start - origin)
        if 0 <= index < seconds:
            (ok if r.ok else failed)[index] += 1
            latencies[index].append(r.ms)
    xs = list(range(seconds))
    smooth = 3  # seconds, for the rates; p95 over a 5 s window
    ok_rate = [sum(ok[max(0, i - smooth + 1) : i + 1]) / min(smooth, i + 1) for i in xs]
    failed_rate = [sum(failed[max(0, i - smooth + 1) : i + 1]) / min(smooth, i + 1) for i in xs]
    error_pct = [100 * f / (o + f) if (o + f) else 0.0 for o, f in zip(ok_rate, failed_rate, strict=True)]
    p95 = [percentile([v for bucket in latencies[max(0, i - 4) : i + 1] for v in bucket], 0.95) for i in xs]

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    top.plot(xs, ok_rate, color="tab:green", label="successful req/s")
    top.plot(xs, failed_rate, color="tab:red", label="failed req/s")
    top.set_ylabel("requests/s")
    top.legend(loc="upper left", fontsize=8)
    middle.plot(xs, error_pct, color="tab:red")
    middle.set_ylabel("error rate %")
    middle.set_ylim(0, 100)
    bottom.plot(xs, p95, color="tab:blue")
    bottom.set_ylabel("p95 latency ms")
    bottom.set_xlabel("seconds since the load started")
    for axis in (top, middle, bottom):
        axis.axvline(timeline.steady_start - origin, color="grey", linestyle=":", linewidth=1)
        for fault in timeline.faults:
            axis.axvspan(
                fault.start - origin,
                max(fault.end - origin, fault.start - origin + 0.5),
                color="tab:orange",
                alpha=0.25,
            )
        axis.grid(alpha=0.3)
    for fault in timeline.faults:
        top.annotate(
            fault.label,
            (fault.start - origin, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
        )
    figure.suptitle(f"{title}: fault windows shaded, dotted line = all shoppers spawned")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
