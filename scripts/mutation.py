"""`make mutation`: mutation testing of the money, stock, token and card code, one module at a time.

Each module is mutated by mutmut (pinned in requirements/dev.in) against the test files that cover it, in
its own scratch copy of the repo under `.cache/mutation/<module>/`, so a run never touches the work tree and
modules never share results. mutmut runs the selected tests once with coverage to learn which tests call
which function; then, for each mutant, it forks the already-imported test process and runs only the tests
that reach the mutated function (those that killed earlier mutants of the same function first, then fastest
first: scripts/mutation_conftest.py), stopping at the first failure.

The result is a per-module table (mutants, killed, survived, score) and the list of surviving mutants. Every
survivor must be classified in `tests/mutation/survivors.yaml` (equivalent or harmless, with the reason),
matched by module, function and the changed line(s), so renumbering never unclassifies a mutant.
Exit 1 when a module scores under the target or a survivor is unclassified.

    python -m scripts.mutation                 # every module (make mutation)
    python -m scripts.mutation --smoke         # the one-module smoke make test runs
    python -m scripts.mutation --module services/payment/cards.py --keep   # one module, keep the copy
    python -m scripts.mutation --module services/order/checkout.py --function _charge --function fail
                                               # only some functions' mutants (a partial score, said so)
    python -m scripts.mutation --module services/order/checkout.py --retest
                                               # only the survivors of earlier runs (after adding tests)

Every run's outcomes go into the module's ledger (`.cache/mutation/ledger/`, per sha256 of the module), so
slices and re-tests of the same code add up: the table then has a row for the module over all its runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "mutation"
SURVIVORS_FILE = ROOT / "tests" / "mutation" / "survivors.yaml"
REPORT_DIR = ROOT / "artifacts" / "mutation"
# Every mutant's latest outcome per module, over runs of the same source (see Ledger): outside git.
LEDGER_DIR = WORK / "ledger"
TARGET = 0.90
RETEST_LABEL = "(re-test"  # how the table names a run of survivors only (`collect`)


@dataclass(frozen=True)
class Module:
    path: str  # the file mutated
    tests: tuple[str, ...]  # the test files that cover it (each mutant runs the ones that reach it)


MODULES = (
    Module(
        "services/order/checkout.py",
        (
            "tests/services/order/test_checkout.py",
            "tests/services/order/test_checkout_failures.py",
            # the settler finishes or fails checkouts with checkout's ship/mark_paid/fail (as_order=True)
            "tests/services/order/test_settle.py",
        ),
    ),
    Module("services/product/inventory.py", ("tests/services/product/test_inventory.py",)),
    Module(
        "services/payment/api.py",
        ("tests/services/payment/test_api.py", "tests/services/payment/test_api_answers.py"),
    ),
    Module("services/payment/cards.py", ("tests/services/payment/test_api.py",)),
    # The card checks payment relies on moved to the shared contract (one card rule everywhere).
    Module("services/contracts/card.py", ("tests/services/test_contracts.py",)),
    Module(
        "services/kit/jwt.py",
        ("tests/kit/test_tokens.py", "tests/kit/test_kit.py", "tests/services/auth/test_service_tokens.py"),
    ),
    Module("services/kit/middleware.py", ("tests/kit/test_middleware.py", "tests/kit/test_kit.py")),
    Module(
        "services/kit/errors.py",
        ("tests/kit/test_errors.py", "tests/kit/test_kit.py", "tests/kit/test_openapi_errors.py"),
    ),
    Module(
        "services/auth/store.py",
        (
            "tests/services/auth/test_api.py",
            "tests/services/auth/test_throttle.py",
            "tests/services/auth/test_service_tokens.py",
        ),
    ),
)
# The one-module smoke `make test` runs: pure functions and second-long tests, so it measures the runner
# (mutmut, the scratch copy, the table, the survivors file) in a minute or two, not the suite's speed.
SMOKE = "services/contracts/card.py"

# mutmut's status per exit code of a mutant's test run (mutmut.stats.status_by_exit_code).
KILLED = {"killed", "timeout", "caught by type check"}
# What copies into each scratch directory: the code, the tests and what they import at collection.
COPIED = ("services", "tests", "scripts", "pyproject.toml")
# Log calls say nothing a user or a caller sees; mutating their text only makes noise.
DO_NOT_MUTATE = [r"\blog\.(debug|info|warning|error|exception)\("]


@dataclass
class Survivor:
    name: str  # mutmut's mutant name
    status: str
    function: str
    before: str
    after: str

    def key(self) -> tuple[str, str, str]:
        return self.function, _norm(self.before), _norm(self.after)


@dataclass
class Result:
    module: Module
    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[Survivor] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    functions: tuple[str, ...] = ()  # the run was restricted to these functions' mutants
    label: str = ""  # said after the module in the table instead of "(only ...)"

    @property
    def is_retest(self) -> bool:
        """Whether this run re-tested only survivors (its label says so, `collect`)."""
        return self.label.startswith(RETEST_LABEL)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in KILLED)

    @property
    def score(self) -> float:
        return self.killed / self.total if self.total else 0.0


def _norm(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines() if line.strip())


def slug(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def mutmut_config(module: Module) -> str:
    """The [tool.mutmut] table for one module."""
    config = {
        "source_paths": ["services"],
        "only_mutate": [module.path],
        "pytest_add_cli_args_test_selection": list(module.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-o", "timeout=300"],
        "also_copy": ["scripts", "conftest.py"],
        "do_not_mutate_patterns": DO_NOT_MUTATE,
        # grpc (product's Inventory, order's client) is not fork-safe once used: fork from a clean server.
        "process_isolation": "forkserver",
        # mutmut's wall-clock bound of a mutant is (its tests' recorded time + 1 s) x this: under `nice` on
        # shared cores a mutant's tests can run 10x slower than in mutmut's stats run, and a mutant that
        # merely waited for a core was counted "timeout", i.e. killed (4 of the first 36 checkout mutants,
        # two of them changes to a message no test reads). A real hang is still ended: pytest's timeout above.
        "timeout_multiplier": 100.0,
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    return "\n".join(lines) + "\n"


def prepare(module: Module, work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    with (work / "pyproject.toml").open("a") as handle:
        handle.write(mutmut_config(module))
    # A mutant's tests run earlier killers first, then fastest first (see scripts/mutation_conftest.py).
    shutil.copy2(ROOT / "scripts" / "mutation_conftest.py", work / "conftest.py")


_PROGRESS = re.compile(r"(\d+)/(\d+)\s+🎉 (\d+).*?🙁 (\d+)")


def mutant_patterns(module: Module, functions: tuple[str, ...]) -> list[str]:
    """mutmut's mutant-name patterns for functions (`fail`) and methods (`JwksVerifier.verify`)."""
    patterns = []
    for function in functions:
        owner, _, name = function.rpartition(".")
        mangled = f"xǁ{owner}ǁ{name}" if owner else f"x_{name}"
        patterns.append(f"{slug(module.path)}.{mangled}__mutmut_*")
    return patterns


def run_mutmut(
    module: Module,
    work: Path,
    children: int,
    quiet: bool,
    functions: tuple[str, ...] = (),
    names: tuple[str, ...] = (),
) -> None:
    """mutmut run in `work` (only the mutants `names`, else only `functions`' mutants, when given), its
    spinner to mutmut.log; one progress line every 30 s."""
    mutmut = Path(sys.executable).with_name("mutmut")
    log_path = work / "mutmut.log"
    patterns = names or mutant_patterns(module, functions)
    started = last = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(mutmut), "run", "--max-children", str(children), *patterns],
            cwd=work,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            while process.poll() is None:
                time.sleep(1)
                if not quiet and time.monotonic() - last >= 30:
                    last = time.monotonic()
                    print(f"  {module.path}: {_progress(log_path)} ({last - started:.0f} s)", flush=True)
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
    if process.returncode != 0:
        tail = log_path.read_bytes()[-3000:].decode(errors="replace")
        raise RuntimeError(f"mutmut exited {process.returncode} for {module.path}:\n{tail}")


def _progress(log_path: Path) -> str:
    text = log_path.read_bytes()[-4000:].decode(errors="replace")
    found = _PROGRESS.findall(text)
    if not found:
        return "collecting tests and coverage"
    done, total, killed, survived = found[-1]
    return f"{done}/{total} mutants, {killed} killed, {survived} survived"


def statuses(work: Path, module: Module) -> dict[str, str]:
    """mutant name -> status, from mutmut's record of the module."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / (module.path + ".meta")).read_text())
    return {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}


def function_of(mutant: str, module: Module) -> str:
    """`services.kit.jwt.xǁJwksVerifierǁverify__mutmut_3` -> `JwksVerifier.verify`."""
    name = mutant.removeprefix(slug(module.path) + ".")
    name = re.sub(r"__mutmut_\d+$", "", name)
    if name.startswith("xǁ"):
        return ".".join(part for part in name.split("ǁ")[1:] if part)
    return name.removeprefix("x_")


def diff_of(work: Path, module: Module, mutant: str) -> tuple[str, str]:
    """The lines the mutant removed and added (mutmut show's unified diff, computed in this process)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    shown = get_diff_for_mutant(mutant, path=(work / "mutants" / module.path).resolve())
    before, after = [], []
    for line in shown.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            before.append(line[1:])
        elif line.startswith("+"):
            after.append(line[1:])
    return "\n".join(before), "\n".join(after)


def collect(
    module: Module, work: Path, functions: tuple[str, ...] = (), names: tuple[str, ...] = ()
) -> Result:
    result = Result(module, functions=functions)
    if names:
        result.label = f"{RETEST_LABEL} of {len(names)} mutants: survivors, timeouts, not run before)"
        result.functions = tuple(sorted({function_of(name, module) for name in names}))
    for name, status in sorted(statuses(work, module).items()):
        if (functions or names) and status == "not checked":
            continue  # outside the restriction
        result.statuses[status] += 1
        if status not in KILLED:
            before, after = diff_of(work, module, name)
            result.survivors.append(Survivor(name, status, function_of(name, module), before, after))
    return result


# --- the ledger: a module's score over several runs of the same code ------------------------------------


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Ledger:
    """Every mutant's latest outcome for one module, merged over runs (`--function` slices, `--retest`
    re-runs of survivors) of the same source: `.cache/mutation/ledger/<module>.json`. A change to the module
    (another sha256) starts it afresh, since mutmut's mutants and their names follow the code; tests may
    change between runs (a later run's outcome replaces an earlier one: re-testing survivors after adding
    tests is how a slice's score rises). `mutants`: name -> {status, function, before, after}
    (before/after only for survivors, for the reviewed classification)."""

    module: str
    source_sha256: str
    total: int = 0  # mutmut's mutants of the module, run or not
    mutants: dict[str, dict[str, str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every mutant's name, run or not

    @staticmethod
    def path_for(module: Module) -> Path:
        return LEDGER_DIR / f"{slug(module.path)}.json"

    @classmethod
    def load(cls, module: Module, source_sha256: str) -> Ledger:
        path = cls.path_for(module)
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("source_sha256") == source_sha256:
                names = list(data.get("names", []))
                return cls(module.path, source_sha256, int(data["total"]), dict(data["mutants"]), names)
        return cls(module.path, source_sha256)

    def save(self, module: Module) -> None:
        path = self.path_for(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"module": self.module, "source_sha256": self.source_sha256, "total": self.total}
        data = {**data, "mutants": self.mutants, "names": self.names}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    def merge(self, result: Result, outcomes: dict[str, str], names: list[str]) -> None:
        """This run's outcomes (mutant name -> status, only the mutants it ran) replace earlier ones;
        `names`: every mutant of the module."""
        survivors = {s.name: s for s in result.survivors}
        self.total, self.names = len(names), sorted(names)
        for name, status in outcomes.items():
            entry = {"status": status, "function": function_of(name, result.module)}
            if name in survivors:
                entry.update(before=survivors[name].before, after=survivors[name].after)
            self.mutants[name] = entry

    def survivor_names(
        self, functions: tuple[str, ...] = (), classified: list[dict[str, Any]] | None = None
    ) -> list[str]:
        """What `--retest` runs again: the survivors not `classified` (a reviewed equivalent survives any
        test), the timeouts (a timeout counts as killed, but one of a busy machine may be a survivor that
        waited for a core) and, of `functions` when given, the mutants no run has tested yet."""
        reviewed = {
            (e["function"], _norm(str(e["before"])), _norm(str(e["after"]))) for e in classified or []
        }
        module = Module(self.module, ())
        names = [
            name
            for name in self.names
            if functions and name not in self.mutants and function_of(name, module) in functions
        ]
        for name, entry in self.mutants.items():
            if functions and entry["function"] not in functions:
                continue
            if entry["status"] == "timeout":
                names.append(name)
            elif entry["status"] not in KILLED:
                key = (entry["function"], _norm(entry.get("before", "")), _norm(entry.get("after", "")))
                if key not in reviewed:
                    names.append(name)
        return sorted(names)

    def result(self, module: Module) -> Result:
        """The module's score over every mutant the ledger holds, said so in the table."""
        whole = Result(module)
        for name, entry in sorted(self.mutants.items()):
            whole.statuses[entry["status"]] += 1
            if entry["status"] not in KILLED:
                survivor = Survivor(name, entry["status"], entry["function"], entry["before"], entry["after"])
                whole.survivors.append(survivor)
        ran = len(self.mutants)
        whole.label = (
            f"(all {ran} mutants, over several runs)"
            if ran >= self.total
            else f"(the runs so far: {ran} of its {self.total} mutants)"
        )
        return whole

    @property
    def complete(self) -> bool:
        return bool(self.mutants) and len(self.mutants) >= self.total


def record(module: Module, work: Path, result: Result, only: tuple[str, ...] = ()) -> Ledger:
    """Merge this run's outcomes (restricted to `only`: exact mutant names, when the run named them) into
    the module's ledger and save it."""
    outcomes = {
        name: status
        for name, status in statuses(work, module).items()
        if status != "not checked" and (not only or name in only)
    }
    ledger = Ledger.load(module, source_hash(work / module.path))
    ledger.merge(result, outcomes, list(statuses(work, module)))
    ledger.save(module)
    return ledger


# --- the reviewed classification --------------------------------------------------------------------


KINDS = ("equivalent", "harmless")


def load_classified(path: Path = SURVIVORS_FILE) -> dict[str, list[dict[str, Any]]]:
    """module path -> entries {function, before, after, kind, reason}; checks the file's shape."""
    data = yaml.safe_load(path.read_text()) or {}
    problems = []
    for module, entries in data.items():
        for i, entry in enumerate(entries or []):
            missing = {"function", "before", "after", "kind", "reason"} - set(entry)
            if missing:
                problems.append(f"{module} entry {i + 1}: missing {', '.join(sorted(missing))}")
            elif entry["kind"] not in KINDS:
                problems.append(f"{module} entry {i + 1}: kind {entry['kind']!r} is not one of {KINDS}")
            elif len(str(entry["reason"]).split()) < 4:
                problems.append(f"{module} entry {i + 1}: the reason needs words, not a label")
    if problems:
        raise ValueError(f"{path}:\n  " + "\n  ".join(problems))
    return {module: list(entries or []) for module, entries in data.items()}


def classify(result: Result, entries: list[dict[str, Any]]) -> tuple[list[Survivor], list[dict[str, Any]]]:
    """(unclassified survivors, entries that match no survivor any more)."""
    by_key = {(e["function"], _norm(str(e["before"])), _norm(str(e["after"]))): e for e in entries}
    used: set[int] = set()
    unclassified = []
    for survivor in result.survivors:
        entry = by_key.get(survivor.key())
        if entry is None:
            unclassified.append(survivor)
        else:
            used.add(id(entry))
    stale = [e for e in entries if id(e) not in used]
    return unclassified, stale


def reportable_stale(result: Result, stale: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stale entries a run can speak for: a `--retest` runs only the survivors not classified, so the
    classified ones were skipped on purpose, not killed; a `--function` run only those functions."""
    if result.is_retest:
        return []
    if result.functions:
        return [entry for entry in stale if entry["function"] in result.functions]
    return stale


# --- output -----------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    header = "| module | mutants | killed | survived | no tests | score | time |"
    rows = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        name = r.module.path
        if r.label or r.functions:
            name += " " + (r.label or f"(only {', '.join(r.functions)})")
        if r.error:
            rows.append(f"| {name} | error | | | | | {r.seconds:.0f} s |")
            continue
        survived = r.total - r.killed - r.statuses["no tests"]
        rows.append(
            f"| {name} | {r.total} | {r.killed} | {survived} | {r.statuses['no tests']} "
            f"| {r.score:.0%} | {f'{r.seconds:.0f} s' if r.seconds else ''} |"
        )
    return "\n".join(rows)


def survivor_yaml(survivor: Survivor) -> str:
    """A ready-to-review entry for tests/mutation/survivors.yaml."""
    entry = {
        "function": survivor.function,
        "before": survivor.before.strip(),
        "after": survivor.after.strip(),
        "kind": "TODO",
        "reason": "TODO",
    }
    return yaml.safe_dump([entry], sort_keys=False, width=110, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", action="append", help="a module path (repeatable); default: all")
    parser.add_argument("--smoke", action="store_true", help=f"only {SMOKE} (what make test runs)")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        help="only this function's mutants (`fail`, `Class.method`; repeatable): a partial score, said so",
    )
    parser.add_argument(
        "--retest",
        action="store_true",
        help="only the mutants that survived (not classified) or timed out in earlier runs of this code (the"
        " ledger), after adding tests; with --function, only those functions' and also their mutants no run"
        " has tested yet (a slice stopped part way goes on)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies in .cache/mutation")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    wanted = [SMOKE] if args.smoke else (args.module or [m.path for m in MODULES])
    known = {m.path: m for m in MODULES}
    unknown = [path for path in wanted if path not in known]
    if unknown:
        parser.error(f"not a mutation module: {', '.join(unknown)} (known: {', '.join(known)})")
    classified = load_classified()

    results: list[Result] = []
    wholes: list[tuple[Ledger, Result]] = []
    for path in wanted:
        module = known[path]
        work = WORK / slug(path)
        print(f"mutation testing {path} against {', '.join(module.tests)}", flush=True)
        started = time.monotonic()
        functions = tuple(args.function)
        names: tuple[str, ...] = ()
        if args.retest:
            earlier = Ledger.load(module, source_hash(ROOT / path))
            names = tuple(earlier.survivor_names(functions, classified.get(path, [])))
            if not names:
                print(f"  {path}: the ledger records no survivors of this code to re-test", flush=True)
                continue
        prepare(module, work)
        ledger = None
        try:
            run_mutmut(module, work, args.children, args.quiet, functions, names)
            result = collect(module, work, functions, names)
            ledger = record(module, work, result, names)
        except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
            result = Result(module, error=str(exc))
        result.seconds = time.monotonic() - started
        results.append(result)
        print(
            f"  done in {result.seconds:.0f} s: {result.score:.0%} of {result.total} mutants killed",
            flush=True,
        )
        if ledger is not None and (functions or names):
            wholes.append((ledger, ledger.result(module)))  # the module over every run of this code
        if not args.keep and not result.error:
            shutil.rmtree(work, ignore_errors=True)

    results += [whole for _, whole in wholes]
    failures = []
    lines = ["", table(results), ""]
    complete = {id(whole): ledger.complete for ledger, whole in wholes}
    for r in results:
        if r.error:
            failures.append(f"{r.module.path}: {r.error}")
            continue
        if id(r) in complete:  # the module over several runs: its own score and survivors are judged
            if complete[id(r)] and r.score < TARGET:  # once every mutant has run
                failures.append(f"{r.module.path} {r.label}: {r.score:.1%} is under the {TARGET:.0%} target")
            unclassified, _ = classify(r, classified.get(r.module.path, []))
            if unclassified:
                lines.append(f"{r.module.path} {r.label}: {len(unclassified)} survivors not classified yet")
                if complete[id(r)]:
                    failures.append(f"{r.module.path}: {len(unclassified)} unclassified survivors (ledger)")
            continue
        if r.score < TARGET and not r.is_retest:  # a re-test: the module's row after it is judged
            failures.append(f"{r.module.path}: {r.score:.1%} is under the {TARGET:.0%} target")
        unclassified, stale = classify(r, classified.get(r.module.path, []))
        stale = reportable_stale(r, stale)
        for survivor in unclassified:
            failures.append(f"{r.module.path}: unclassified {survivor.status} mutant {survivor.name}")
            lines.append(f"# {survivor.name} ({survivor.status}), for {SURVIVORS_FILE.relative_to(ROOT)}:")
            lines.append(f"{r.module.path}:")
            lines.append("  " + survivor_yaml(survivor).replace("\n", "\n  ").rstrip())
        for entry in stale:
            lines.append(
                f"note: {r.module.path}: no survivor matches the entry for {entry['function']} "
                f"({_norm(str(entry['after']))[:60]!r}): killed now, or the code changed"
            )
    print("\n".join(lines))
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    name = "smoke.md" if args.smoke else "report.md"
    (REPORT_DIR / name).write_text(table(results) + "\n")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"every module at or above {TARGET:.0%}, every survivor classified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
