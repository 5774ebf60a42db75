"""Scenario files (chaos/scenarios/<name>.yaml): the load, the fault schedule and the SLO thresholds of one
chaos run, in one file, read and checked here.

    description: what it shows (one paragraph)
    target: local | cluster        local: a stack of its own on FerretDB; cluster: HOST= / MESH=
    load: {users, spawn_rate, before, after}   shoppers; seconds of steady state before the first fault
                                               and after the last one
    stack: {ENV_VAR: value}        local only: settings of the services (e.g. short leases for a short run)
    proxies: [service]             local only: a fault proxy in front of these services (chaos/fault_proxy.py)
    faults: [{action, ..., hold, pause}]   in sequence: the fault, `hold` seconds of it, `pause` seconds
                                           of normal load before the next one
    slo: {name: threshold}         every key of SLO_NAMES; a missed one makes the run exit non-zero

Raises ScenarioError naming the file and the field for anything malformed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent / "scenarios"
LOCAL_ACTIONS = {"kill": ("service",), "kill-database": (), "proxy-fault": ("service",)}
CLUSTER_ACTIONS = {"delete-pod": ("service",), "scale-to-zero": ("service",), "apply": ("files",)}
# SLO name -> (what it bounds, "min" or "max").
SLO_NAMES = {
    "success_rate_before": ("share of requests that succeed before the first fault", "min"),
    "success_rate_after": ("share of requests that succeed after the last fault", "min"),
    "p95_after_ms": ("95th percentile latency after the last fault (ms)", "max"),
    "recovery_seconds": ("time to recover to the steady-state rate once the fault ended, worst (s)", "max"),
    "double_charges": ("purchases charged more than once", "max"),
    "charges_without_paid_order": ("succeeded charges whose order is not paid (and not refunded)", "max"),
    "paid_orders_lost": ("orders a shopper saw paid that are not paid in order's database", "max"),
    "leaked_reservations": ("stock held for orders that are not paid, after the settle bound", "max"),
    "open_orders": ("checkouts still open after the settle bound", "max"),
    "stock_drift": ("units of stock neither on the shelf nor reserved for a paid order", "max"),
}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Fault:
    action: str
    hold: float = 0.0  # seconds the fault lasts (0: a kill followed by an immediate restart)
    pause: float = 15.0  # seconds of normal load after it, before the next fault
    service: str | None = None
    files: tuple[str, ...] = ()
    abort_percent: float = 0.0
    abort_status: int = 503
    delay_ms: int = 0

    def label(self) -> str:
        what = self.service or ", ".join(self.files) or ""
        return f"{self.action} {what}".strip()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    target: str
    users: int
    spawn_rate: float
    before: float
    after: float
    faults: tuple[Fault, ...]
    slo: dict[str, float]
    stack: dict[str, str] = field(default_factory=dict)
    proxies: tuple[str, ...] = ()
    path: Path | None = None
    # SLOs measured and reported but that do not fail the run (make chaos-test: the latency and success
    # rates depend on how busy the shared machine is; the data SLOs and recovery never do).
    reported_only: frozenset[str] = frozenset()

    @property
    def planned_seconds(self) -> float:
        """Load time without the restarts' own durations."""
        faults = sum(f.hold + f.pause for f in self.faults)
        return self.before + faults + self.after


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def load(name: str) -> Scenario:
    path = HERE / f"{name}.yaml"
    if not path.exists():
        raise ScenarioError(f"no scenario {name!r}; the scenarios are: {', '.join(names())}")
    return parse(yaml.safe_load(path.read_text()), name, path)


def parse(raw: Any, name: str, path: Path | None = None) -> Scenario:
    where = str(path or name)

    def fail(message: str) -> ScenarioError:
        return ScenarioError(f"{where}: {message}")

    if not isinstance(raw, dict):
        raise fail("not a mapping")
    unknown = set(raw) - {"description", "target", "load", "stack", "proxies", "faults", "slo"}
    if unknown:
        raise fail(f"unknown fields {sorted(unknown)}")
    target = raw.get("target")
    if target not in ("local", "cluster"):
        raise fail("target must be local or cluster")
    load_ = raw.get("load") or {}
    try:
        users, spawn_rate = int(load_["users"]), float(load_.get("spawn_rate", load_["users"]))
        before, after = float(load_["before"]), float(load_["after"])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"load needs users, before and after (numbers): {exc}") from None
    actions = LOCAL_ACTIONS if target == "local" else CLUSTER_ACTIONS
    faults = []
    for index, item in enumerate(raw.get("faults") or []):
        if not isinstance(item, dict) or item.get("action") not in actions:
            raise fail(f"faults[{index}]: action must be one of {sorted(actions)}")
        missing = [key for key in actions[item["action"]] if not item.get(key)]
        if missing:
            raise fail(f"faults[{index}] ({item['action']}): needs {', '.join(missing)}")
        try:
            fault = Fault(**{**item, "files": tuple(item.get("files") or ())})
        except TypeError as exc:
            raise fail(f"faults[{index}]: {exc}") from None
        faults.append(fault)
    if not faults:
        raise fail("faults: at least one")
    slo = raw.get("slo") or {}
    if set(slo) != set(SLO_NAMES):
        missing, extra = sorted(set(SLO_NAMES) - set(slo)), sorted(set(slo) - set(SLO_NAMES))
        raise fail(f"slo must set every threshold: missing {missing}, unknown {extra}")
    stack = {str(k): str(v) for k, v in (raw.get("stack") or {}).items()}
    if target == "cluster" and (stack or raw.get("proxies")):
        raise fail("stack and proxies are for local scenarios")
    return Scenario(
        name=name,
        description=" ".join(str(raw.get("description", "")).split()),
        target=target,
        users=users,
        spawn_rate=spawn_rate,
        before=before,
        after=after,
        faults=tuple(faults),
        slo={k: float(v) for k, v in slo.items()},
        stack=stack,
        proxies=tuple(raw.get("proxies") or ()),
        path=path,
    )
