"""pytest hooks for a mutant's test run, copied by `scripts/mutation.py` as the scratch copy's root
`conftest.py` (so it applies to every test file mutmut runs there, and never to the real suite).

mutmut runs each mutant's covering tests with `-x` (stop at the first failure), so a killed mutant costs the
tests run before the first one that fails, and most of a test's cost here is its set-up (in-process services:
about a second each on a loaded machine), not its body. Mutants of one function are mostly killed by the same
few tests, and mutmut tests them one after another, so the tests that killed earlier mutants of the same
function run first (most kills first), then the rest by mutmut's recorded duration, fastest first. Measured
on checkout.py: sorting by duration alone was slower than mutmut's own order (a test's set-up is not in its
recorded duration). A surviving mutant runs the same tests whatever the order; the order changes nothing a
test asserts (every test sets up its own services and store).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from pathlib import Path

import pytest

# Written in the scratch copy's mutants/ directory (every run's working directory): one line per kill,
# "<function>\t<test node id>", appended by the mutant's process (mutmut runs them in parallel).
KILLS = Path("mutation-kills.tsv")
_durations: dict[str, float] | None = None


def _duration_by_test() -> dict[str, float]:
    """mutmut's seconds per test node id (empty before its stats run has written them)."""
    global _durations
    if _durations is None:
        stats = Path("mutmut-stats.json")
        _durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.exists() else {}
    return _durations


def mutant_function() -> str | None:
    """The mutated function's name in a mutant's test run (None in mutmut's stats and clean runs)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    found = re.fullmatch(r"(.+)__mutmut_\d+", mutant)
    return found.group(1) if found else None


def kills_by_test(function: str) -> Counter[str]:
    """How many earlier mutants of `function` each test killed."""
    counts: Counter[str] = Counter()
    if KILLS.exists():
        for line in KILLS.read_text().splitlines():
            killed_function, _, nodeid = line.partition("\t")
            if killed_function == function:
                counts[nodeid] += 1
    return counts


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    function = mutant_function()
    if function is None:
        return
    durations, kills = _duration_by_test(), kills_by_test(function)
    items.sort(key=lambda item: (-kills[item.nodeid], durations.get(item.nodeid, math.inf)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    function = mutant_function()
    if function is not None and report.failed:
        with KILLS.open("a") as kills:  # one short append per killed mutant
            kills.write(f"{function}\t{report.nodeid}\n")
