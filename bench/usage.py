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


def anon_mb(pids: Mapping[str, int]) -> dict[str, float]:
    """Anonymous resident memory of each named process, in MB: what it allocated itself (heap, Python
    objects, thread stacks), its RSS without the mapped files (the code of Python and of the libraries).
    Those file pages are shared by every process that maps the file, and how many of them count in a
    process's RSS depends on the page cache, not on the process: the same product started 9 MB higher in
    a fresh clone, whose just-installed grpcio was cached in large folios (cygrpc's mapped pages 6.6 ->
    13.1 MB), with the same anonymous memory to 0.01 MB (docs/performance.md, fourth pass)."""
    sizes: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            memory = psutil.Process(pid).memory_info()
        except psutil.NoSuchProcess:
            sizes[name] = float("nan")
            continue
        sizes[name] = (memory.rss - getattr(memory, "shared", 0)) / 1e6  # Linux: shared = RssFile + RssShmem
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
