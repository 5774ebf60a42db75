"""Every command of the guides that needs no data plane runs against the real API server.

The commands come from the guides themselves (tests/sim/guides.py, with the offline guide checker's
extractor). The Istio lab guides run in tests/sim/test_3_istio.py, each with its checks after every command,
and the README's quick start in tests/sim/test_7_quick_start.py (over the running shop, where it switches
the mesh); every other guide runs here, in its own order. Every command is either run or classified with
the reason it cannot run here (a data plane, a running container, an editor), and the last test fails when
a runnable command of any guide was run by no test of the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim.guides import (
    LINKERD_CLI,
    NO_LINKERD,
    RAN,
    guide_commands,
    guides_with_commands,
    run_guide,
)
from tests.sim.helpers import ROOT

GUIDES = guides_with_commands()
ISTIO_LAB_GUIDES = {
    p for p in GUIDES if p.parent == ROOT / "docs" / "istio" and (ROOT / "mesh/istio/labs" / p.stem).is_dir()
}
QUICK_START = ROOT / "README.md"  # tests/sim/test_7_quick_start.py
OTHER_GUIDES = [p for p in GUIDES if p not in ISTIO_LAB_GUIDES and p != QUICK_START]
# The tests that run guides: the Istio lab guides (test_3), the quick start (test_7), the others (here).
GUIDE_TESTS = ("test_each_lab_guide_runs", "test_readme_quick_start", "test_the_guide_commands_run")


def test_every_guide_command_is_run_here_or_has_a_reason() -> None:
    unclassified = [
        f"{c.where}: {c.text}"
        for p in GUIDES
        for c in guide_commands(p)
        if not c.runs() and c.reason_not_run() is None
    ]
    assert unclassified == []


def _is_linkerd_guide(path: Path) -> bool:
    return path.parent == ROOT / "docs" / "linkerd"


@pytest.mark.parametrize("path", OTHER_GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_guide_commands_run_against_the_api_server(path: Path) -> None:
    commands = [c for c in guide_commands(path) if c.runs()]
    if not commands:
        pytest.skip("no command of this guide can run without a data plane (each has its reason)")
    if _is_linkerd_guide(path) and not LINKERD_CLI:
        pytest.skip(NO_LINKERD)
    ran = run_guide(path)
    assert ran, f"{path}: none of its {len(commands)} runnable commands ran"
    print(f"{path.relative_to(ROOT)}: ran {len(ran)} commands:\n  " + "\n  ".join(ran))


def test_every_runnable_guide_command_ran(request: pytest.FixtureRequest) -> None:
    """Last: the runnable commands of every guide were run by a test of this session (this file's or
    test_3_istio.py's lab guide tests, test_7_quick_start.py). Skipped when only part of the suite was
    selected."""
    guide_tests = [i.nodeid for i in request.session.items if any(t in i.nodeid for t in GUIDE_TESTS)]
    wanted = len(ISTIO_LAB_GUIDES) + 1 + len(OTHER_GUIDES)
    if len(guide_tests) < wanted or request.session.testsfailed:
        pytest.skip("only part of the guide tests ran (selection, or a failure before this test)")
    missing = [
        f"{c.where}: {c.text}"
        for p in GUIDES
        if not (_is_linkerd_guide(p) and not LINKERD_CLI)
        for c in guide_commands(p)
        if c.runs() and not (c.needs_linkerd() and not LINKERD_CLI) and (c.where, c.text) not in RAN
    ]
    assert missing == []
