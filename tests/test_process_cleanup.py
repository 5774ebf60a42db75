"""Every process a test starts is stopped however the test ends: a failed assertion must not leave
`scripts/dev.py` or a service running, holding its port for every later run (as test_dev_runner once did).

A `subprocess.Popen(...)` in tests/ must be a `with` block's context, or sit in a function (or one it is
nested in) that stops it in a `finally:` block, registers `request.addfinalizer`, or is a yield fixture
(its teardown runs after a failure too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Function = ast.FunctionDef | ast.AsyncFunctionDef


def _is_popen(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "Popen") or (
        isinstance(func, ast.Name) and func.id == "Popen"
    )


def _cleans_up(function: Function) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Try) and node.finalbody:
            return True
        if isinstance(node, ast.Attribute) and node.attr == "addfinalizer":
            return True
    is_fixture = any("fixture" in ast.unparse(d) for d in function.decorator_list)
    return is_fixture and any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(function))


def unstopped_processes(name: str, source: str) -> list[str]:
    """`file:line` of every Popen whose process a failing test would leave running."""
    tree = ast.parse(source)
    found: list[str] = []

    def visit(node: ast.AST, functions: list[Function], managed: set[int]) -> None:
        if isinstance(node, ast.With | ast.AsyncWith):
            managed = managed | {id(item.context_expr) for item in node.items}
        if _is_popen(node) and id(node) not in managed and not any(_cleans_up(f) for f in functions):
            found.append(f"{name}:{node.lineno}")  # type: ignore[attr-defined]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions = [*functions, node]
        for child in ast.iter_child_nodes(node):
            visit(child, functions, managed)

    visit(tree, [], set())
    return found


def test_every_process_a_test_starts_is_stopped_when_the_test_fails() -> None:
    sources = {
        str(p.relative_to(ROOT)): p.read_text()
        for p in sorted((ROOT / "tests").rglob("*.py"))
        if p.name != Path(__file__).name
    }
    assert sum("Popen(" in s for s in sources.values()) >= 4
    assert [where for name, src in sources.items() for where in unstopped_processes(name, src)] == []


def test_a_planted_process_left_running_on_failure_is_found() -> None:
    planted = """
import subprocess, pytest

def start():
    return subprocess.Popen(["sleep", "60"])            # 5: a helper nobody stops

def test_leaks():
    proc = subprocess.Popen(["sleep", "60"])            # 8: stopped only if the assert passes
    assert proc.poll() is None
    proc.kill()

def test_stops():
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert proc.poll() is None
    finally:
        proc.kill()

def test_with():
    with subprocess.Popen(["sleep", "60"]) as proc:
        assert proc.poll() is None

@pytest.fixture
def server():
    def start():
        return subprocess.Popen(["sleep", "60"])
    procs = [start()]
    yield procs
    for p in procs:
        p.kill()
"""
    assert unstopped_processes("planted.py", planted) == ["planted.py:5", "planted.py:8"]
