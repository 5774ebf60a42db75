"""`make mutation`'s runner (scripts/mutation.py) without running mutmut (`make test` runs the real smoke):
its module list points at real code and tests, and the reviewed survivors file is complete and well-formed,
and a survivor is matched by what it changes, never by mutmut's number."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from scripts import mutation
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
