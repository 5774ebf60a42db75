"""pytest hooks for a mutant's test run, copied by `scripts/mutation.py` as the scratch copy's root
`conftest.py` (so it applies to every test file mutmut runs there, and never to the real suite).

mutmut runs each mutant's covering tests with `-x` (stop at the first failure) but, with its forkserver
isolation, in no particular order (it passes a set), so a mutant the first 0.1 s test kills may first wait
for a 4 s one. Running them fastest first (mutmut's own duration per test, from its clean stats run) makes a
killed mutant stop as early as its cheapest killing test allows; a surviving mutant runs the same tests
either way. The order changes nothing a test asserts: every test sets up its own services and store.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

_durations: dict[str, float] | None = None


def _duration_by_test() -> dict[str, float]:
    """mutmut's seconds per test node id (empty before its stats run has written them)."""
    global _durations
    if _durations is None:
        stats = Path("mutmut-stats.json")  # the run's working directory is the scratch copy's mutants/
        _durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.exists() else {}
    return _durations


def is_mutant_run() -> bool:
    """True in a mutant's test run (mutmut names the mutant), False in its stats and clean runs."""
    return "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", "")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not is_mutant_run():
        return
    durations = _duration_by_test()
    items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
