"""One measured run of a case, whatever drove it (wrk, or the checkout journey)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """Counts, and latencies in milliseconds. `requests` counts whole journeys for the checkout journey."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        """Requests (or journeys) per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` 0.99 for p99); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def from_latencies(latencies_ms: Sequence[float], seconds: float, errors: int) -> Result:
    ordered = sorted(latencies_ms)
    return Result(
        requests=len(ordered),
        seconds=seconds,
        errors=errors,
        p50_ms=percentile(ordered, 0.50),
        p90_ms=percentile(ordered, 0.90),
        p99_ms=percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else math.nan,
    )
