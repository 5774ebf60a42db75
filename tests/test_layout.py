"""Where test code lives: fixtures in conftest.py files, shared helpers in helper modules, tests in test_*.py.

A test module without tests is a helper module with a misleading name; a module that imports from a
conftest.py depends on a file pytest loads by itself (and that only pytest should load); a second
`free_port` is a copy of scripts/dev.py's. Each rule is checked over the repository and on a planted case.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The one free-port helper (tests import it from here).
FREE_PORT_HOME = "scripts/dev.py"


def _python_files(*folders: str) -> list[Path]:
    skip = {".venv", ".cache", "__pycache__", "node_modules", "artifacts"}
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if not skip & set(path.relative_to(ROOT).parts)
    )


def collected_tests(tree: ast.Module) -> list[str]:
    """The tests pytest collects from a module: test_* functions at module level or in Test* classes."""
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")):
        names += [n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [name for name in names if name.startswith("test")]


def conftest_imports(tree: ast.Module) -> list[str]:
    """The conftest modules `tree` imports from (`from tests.x.conftest import y`, `import conftest`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [m for m in modules if m.split(".")[-1] == "conftest"]
    return found


def free_port_definitions(tree: ast.Module) -> int:
    """How many functions named free_port (or _free_port) `tree` defines that open a socket themselves (a
    wrapper that imports scripts.dev's is not a copy)."""
    return sum(
        isinstance(n, ast.FunctionDef)
        and n.name.lstrip("_") == "free_port"
        and any(isinstance(m, ast.Name) and m.id == "socket" for m in ast.walk(n))
        for n in ast.walk(tree)
    )


def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_every_test_module_has_tests() -> None:
    empty = [
        str(p.relative_to(ROOT))
        for p in _python_files("tests")
        if p.name.startswith("test_") and not collected_tests(_parsed(p))
    ]
    assert not empty, f"test_*.py files without tests (name them as helpers, or move them): {empty}"


def test_nothing_imports_from_a_conftest() -> None:
    offenders = {
        str(p.relative_to(ROOT)): imports
        for p in _python_files("tests", "scripts", "services", "bench")
        if (imports := conftest_imports(_parsed(p)))
    }
    assert not offenders, f"move what these import into a helper module: {offenders}"


def test_free_port_is_written_once() -> None:
    homes = [
        str(p.relative_to(ROOT))
        for p in _python_files("tests", "scripts", "services", "bench")
        if free_port_definitions(_parsed(p))
    ]
    assert homes == [FREE_PORT_HOME], f"import free_port from {FREE_PORT_HOME}; copies in {homes}"


@pytest.mark.parametrize(
    ("source", "has_tests"),
    [
        ("def make_user():\n    pass\n", False),
        ("import pytest\n\n@pytest.fixture\ndef user():\n    return 1\n", False),
        ("def test_login():\n    pass\n", True),
        ("async def test_login():\n    pass\n", True),
        ("class TestLogin:\n    def test_ok(self):\n        pass\n", True),
    ],
)
def test_a_planted_test_module_without_tests_is_caught(source: str, has_tests: bool) -> None:
    assert bool(collected_tests(ast.parse(source))) is has_tests


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from tests.containers.conftest import REPORT\n", ["tests.containers.conftest"]),
        ("import conftest\n", ["conftest"]),
        ("def f():\n    from tests.cluster.conftest import probe\n", ["tests.cluster.conftest"]),
        ("from tests.cluster.helpers import probe\n", []),
    ],
)
def test_a_planted_conftest_import_is_caught(source: str, caught: list[str]) -> None:
    assert conftest_imports(ast.parse(source)) == caught


def test_a_planted_free_port_copy_is_caught() -> None:
    planted = "import socket\n\ndef _free_port() -> int:\n    with socket.socket() as s:\n        return 0\n"
    assert free_port_definitions(ast.parse(planted)) == 1
    assert free_port_definitions(ast.parse("from scripts.dev import free_port\n")) == 0
    wrapper = "def _free_port() -> int:\n    from scripts.dev import free_port\n\n    return free_port()\n"
    assert free_port_definitions(ast.parse(wrapper)) == 0
