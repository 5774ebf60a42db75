"""`make mutation`'s runner (scripts/mutation.py) without running mutmut (`make test` runs the real smoke):
its module list points at real code and tests, and the reviewed survivors file is complete and well-formed,
and a survivor is matched by what it changes, never by mutmut's number."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts import mutation, mutation_conftest
from scripts.mutation import MODULES, Module, Result, Survivor, classify, function_of, load_classified

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_and_its_tests_exist() -> None:
    assert mutation.SMOKE in {m.path for m in MODULES}
    for module in MODULES:
        assert (ROOT / module.path).is_file(), module.path
        assert module.tests and all((ROOT / t).is_file() for t in module.tests), module


def test_the_reviewed_survivors_file_is_well_formed() -> None:
    classified = load_classified()
    assert set(classified) <= {m.path for m in MODULES}


def test_an_entry_without_a_real_reason_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "survivors.yaml"
    planted.write_text(
        "services/kit/jwt.py:\n"
        "  - {function: verify, before: a, after: b, kind: fine, reason: it is fine really}\n"
        "  - {function: verify, before: a, after: b, kind: harmless, reason: ok}\n"
        "  - {function: verify, before: a, kind: equivalent, reason: the same value either way}\n"
    )
    with pytest.raises(ValueError) as refused:
        load_classified(planted)
    message = str(refused.value)
    assert "entry 1: kind 'fine'" in message
    assert "entry 2: the reason needs words" in message
    assert "entry 3: missing after" in message


def test_a_survivor_is_matched_by_its_change_not_its_number() -> None:
    module = Module("services/kit/jwt.py", ("tests/kit/test_tokens.py",))
    result = Result(module, statuses=Counter({"killed": 8, "survived": 2}))
    result.survivors = [
        Survivor("services.kit.jwt.x_sign__mutmut_7", "survived", "sign", 'x = {"a": 1}', 'x = {"a": 2}'),
        Survivor("services.kit.jwt.x_sign__mutmut_9", "survived", "sign", "y = 1", "y = 2"),
    ]
    entries = [
        {"function": "sign", "before": 'x  =  {"a": 1}', "after": 'x = {"a": 2}', "kind": "harmless"},
        {"function": "sign", "before": "z = 1", "after": "z = None", "kind": "equivalent"},
    ]
    unclassified, stale = classify(result, entries)
    assert [s.name for s in unclassified] == ["services.kit.jwt.x_sign__mutmut_9"]
    assert stale == [entries[1]]
    assert result.score == 0.8


def test_only_a_run_that_tested_an_entrys_function_calls_the_entry_stale() -> None:
    module = Module("services/kit/jwt.py", ())
    entries = [
        {"function": "sign", "before": "z = 1", "after": "z = None", "kind": "equivalent"},
        {"function": "verify", "before": "a", "after": "b", "kind": "equivalent"},
    ]
    whole = Result(module, statuses=Counter({"killed": 10}))
    assert mutation.reportable_stale(whole, entries) == entries
    sliced = Result(module, statuses=Counter({"killed": 10}), functions=("sign",))
    assert mutation.reportable_stale(sliced, entries) == [entries[0]]
    retest = Result(module, statuses=Counter({"killed": 1}), label="(re-test of 1 mutants: survivors)")
    assert mutation.reportable_stale(retest, entries) == []  # classified survivors were skipped, not killed
    retest.functions = ("sign",)
    assert mutation.reportable_stale(retest, entries) == []


def test_mutant_names_become_the_function_they_change() -> None:
    module = Module("services/kit/jwt.py", ())
    assert function_of("services.kit.jwt.xǁJwksVerifierǁverify__mutmut_3", module) == "JwksVerifier.verify"
    assert function_of("services.kit.jwt.x_sign__mutmut_12", module) == "sign"


def test_a_run_restricted_to_functions_names_their_mutants_and_says_so_in_the_table() -> None:
    module = Module("services/kit/jwt.py", ("tests/kit/test_tokens.py",))
    assert mutation.mutant_patterns(module, ("sign", "JwksVerifier.verify")) == [
        "services.kit.jwt.x_sign__mutmut_*",
        "services.kit.jwt.xǁJwksVerifierǁverify__mutmut_*",
    ]
    assert function_of("services.kit.jwt.xǁJwksVerifierǁverify__mutmut_3", module) == "JwksVerifier.verify"
    result = Result(module, statuses=Counter({"killed": 9, "survived": 1}), functions=("sign",))
    assert "| services/kit/jwt.py (only sign) | 10 | 9 | 1 | 0 | 90% |" in mutation.table([result])


def test_a_mutants_tests_run_earlier_killers_first_then_fastest_and_only_for_a_mutant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mutmut runs a mutant's tests with `-x`: the first failing test ends the run. The scratch copy's
    conftest puts first the tests that killed earlier mutants of the same function (most kills first), then
    the rest by mutmut's recorded duration; each kill is recorded as it happens. mutmut's stats and clean
    runs keep pytest's order and record nothing."""
    (tmp_path / "mutmut-stats.json").write_text(
        '{"duration_by_test": {"t.py::slow": 4.0, "t.py::fast": 0.1, "t.py::middle": 0.9}}'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mutation_conftest, "_durations", None)
    fail = "services.order.checkout.x_fail"

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid

    def order(mutant: str) -> list[str]:
        monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
        items = [Item(n) for n in ("t.py::slow", "t.py::unknown", "t.py::fast", "t.py::middle")]
        mutation_conftest.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
        return [item.nodeid for item in items]

    def report(mutant: str, nodeid: str, failed: bool) -> None:
        monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
        mutation_conftest.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, failed=failed))  # type: ignore[arg-type]

    assert order(f"{fail}__mutmut_1") == ["t.py::fast", "t.py::middle", "t.py::slow", "t.py::unknown"]
    report(f"{fail}__mutmut_1", "t.py::middle", failed=False)
    report(f"{fail}__mutmut_1", "t.py::slow", failed=True)
    report(f"{fail}__mutmut_2", "t.py::unknown", failed=True)
    report(f"{fail}__mutmut_3", "t.py::unknown", failed=True)
    report("services.order.checkout.x_ship__mutmut_1", "t.py::fast", failed=True)  # another function's
    for run in ("stats", "", "mutant_generation"):
        report(run, "t.py::fast", failed=True)  # not a mutant: not recorded
        assert order(run) == ["t.py::slow", "t.py::unknown", "t.py::fast", "t.py::middle"]
    assert order(f"{fail}__mutmut_4") == ["t.py::unknown", "t.py::slow", "t.py::fast", "t.py::middle"]


def test_the_scratch_copy_gets_the_ordering_conftest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutation, "COPIED", ("pyproject.toml",))
    work = tmp_path / "copy"
    mutation.prepare(MODULES[0], work)
    conftest = (work / "conftest.py").read_text()
    assert conftest == (mutation.ROOT / "scripts" / "mutation_conftest.py").read_text()
    assert '"conftest.py"' in (work / "pyproject.toml").read_text().split("[tool.mutmut]")[1]


def test_the_ledger_gives_a_module_score_over_several_runs_of_the_same_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices (`--function`) and re-tests of survivors (`--retest`) add up to the module's score; a later
    outcome of a mutant replaces an earlier one; a change to the module's code starts afresh."""
    monkeypatch.setattr(mutation, "LEDGER_DIR", tmp_path)
    module = Module("services/kit/jwt.py", ("tests/kit/test_tokens.py",))
    name = "services.kit.jwt.x_sign__mutmut_{}".format

    def run(code: str, outcomes: dict[int, str], functions: tuple[str, ...] = ("sign",)) -> mutation.Ledger:
        result = Result(module, statuses=Counter(outcomes.values()), functions=functions)
        result.survivors = [
            Survivor(name(n), status, "sign", f"x = {n}", f"x = -{n}")
            for n, status in outcomes.items()
            if status == "survived"
        ]
        ledger = mutation.Ledger.load(module, code)
        ledger.merge(
            result, {name(n): status for n, status in outcomes.items()}, [name(n) for n in range(1, 6)]
        )
        ledger.save(module)
        return mutation.Ledger.load(module, code)

    first = run("sha-1", {1: "killed", 2: "survived"})
    assert not first.complete and first.survivor_names() == [name(2)]
    assert first.survivor_names(("sign",)) == [name(n) for n in (2, 3, 4, 5)]  # a slice goes on
    partial = first.result(module)
    assert (partial.total, partial.killed, partial.label) == (2, 1, "(the runs so far: 2 of its 5 mutants)")
    run("sha-1", {3: "killed", 4: "survived"})
    assert run("sha-1", {5: "timeout"}).survivor_names() == [name(2), name(4), name(5)]  # re-tested too
    reviewed = [{"function": "sign", "before": "x = 4", "after": "x =  -4"}]  # classified: not re-tested
    assert mutation.Ledger.load(module, "sha-1").survivor_names((), reviewed) == [name(2), name(5)]
    retested = run("sha-1", {2: "killed", 5: "killed"})  # a new test kills it
    assert retested.complete and retested.survivor_names() == [name(4)]
    whole = retested.result(module)
    assert (whole.total, whole.killed, whole.label) == (5, 4, "(all 5 mutants, over several runs)")
    [survivor] = whole.survivors
    assert survivor.key() == ("sign", "x = 4", "x = -4")  # classified as any survivor is
    assert "| services/kit/jwt.py (all 5 mutants, over several runs) | 5 | 4 | 1 | 0 | 80% |  |" in (
        mutation.table([whole])
    )
    assert run("sha-2", {1: "survived"}).mutants.keys() == {name(1)}  # the code changed: afresh
