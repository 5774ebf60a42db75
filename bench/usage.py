"""CPU time and memory of the processes under test, read from the kernel (psutil)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psutil


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes have used so far (gone processes count as 0)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def rss_mb(pids: Mapping[str, int]) -> dict[str, float]:
    """Resident memory of each named process, in MB (10^6 bytes)."""
    sizes: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            sizes[name] = psutil.Process(pid).memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            sizes[name] = float("nan")
    return sizes


class CpuMeter:
    """CPU used by a set of processes between `start` and `stop`."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._start = 0.0

    def start(self) -> None:
        self._start = cpu_seconds(self.pids)

    def stop(self) -> float:
        return cpu_seconds(self.pids) - self._start


class ProcessMeter:
    """CPU used by each named process between `start` and `stop` (seconds per name)."""

    def __init__(self, named: Mapping[str, int]) -> None:
        self.named = dict(named)
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds([pid]) for name, pid in self.named.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds([pid]) - self._start[name] for name, pid in self.named.items()}
