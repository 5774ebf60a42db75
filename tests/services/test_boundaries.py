"""Services don't import each other, and take the kit's named dependencies instead of reading the app by
hand: the import graph of services/ (docs/architecture.md, "How to add a service").

A service may import its own package and what the shop shares: the kit (`services.kit`), the JSON
contracts (`services.contracts`), the gRPC contract (`services.protos`) and the topology. Code that calls a
neighbour lives with the caller (order's `inventory_client.py`); shapes two services exchange live in the
contracts. The shared packages import nothing from the services.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services import topology

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SHARED = {"kit", "contracts", "protos", "topology"}
# What each shared package may import from services.* (besides itself).
SHARED_MAY_IMPORT = {"kit": {"topology"}, "contracts": set(), "protos": set(), "topology": set()}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, first part after `services.`) of every import of the shop's code in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "services":  # `from services import payment`
                names = [f"services.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name.split(".")[1]) for name in names if name.startswith("services.")]
    return found


def boundary_errors(package: str, relative: str, source: str) -> list[str]:
    """The imports of module `relative` (in services/<package>/) that cross a service boundary."""
    allowed = {package} | (SHARED if package not in SHARED else SHARED_MAY_IMPORT[package])
    return [
        f"services/{relative}:{line} imports services.{target}"
        for line, target in imported_packages(source)
        if target not in allowed
    ]


def _modules() -> list[tuple[str, Path]]:
    packages = [p for p in SERVICES_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    found = [(p.name, f) for p in packages for f in sorted(p.rglob("*.py"))]
    return [*found, ("topology", SERVICES_DIR / "topology.py")]


def test_every_service_and_shared_package_is_known() -> None:
    packages = {p for p, _ in _modules()}
    assert packages == set(topology.SERVICES) | SHARED


def test_no_service_imports_another_service() -> None:
    errors = []
    for package, path in _modules():
        relative = path.relative_to(SERVICES_DIR).as_posix()
        errors += boundary_errors(package, relative, path.read_text())
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize(
    ("package", "source", "crossing"),
    [
        ("order", "from services.payment import cards\n", "services.payment"),
        ("order", "from services.product.inventory_client import InventoryClient\n", "services.product"),
        ("frontend", "import services.user.api as user_api\n", "services.user"),
        ("shipping", "from services import order\n", "services.order"),
        ("kit", "from services.contracts import Address\n", "services.contracts"),
        ("contracts", "from services.kit import ApiError\n", "services.kit"),
    ],
)
def test_a_planted_crossing_import_is_caught(package: str, source: str, crossing: str) -> None:
    errors = boundary_errors(package, f"{package}/planted.py", f'"""doc"""\n\n{source}')
    assert errors == [f"services/{package}/planted.py:3 imports {crossing}"]


def test_the_shared_code_and_own_modules_are_allowed() -> None:
    source = (
        "from services.kit import ApiError\nfrom services.contracts import Address\n"
        "from services.protos import inventory_pb2\nfrom services import topology\n"
        "from services.order.clients import Neighbours\nimport httpx\nfrom . import store\n"
    )
    assert boundary_errors("order", "order/ok.py", source) == []


# --- named dependencies: declared once in services/kit/deps.py ------------------------------------------

# What a service writes instead of reading the app by hand or re-declaring the kit's aliases.
HAND_WRITTEN = {
    r"request\.app\.state\b": "request.app.state (use the kit's Db, Http, AppSettings[...], deps.app_state)",
    r"Depends\(current_user\)": "Depends(current_user) (use kit.deps.CurrentUser)",
    r"Depends\(current_caller\)": "Depends(current_caller) (use kit.deps.Caller)",
    r"Depends\(require_group\(": "Depends(require_group(...)) (use kit.deps.AdminUser)",
}


def hand_written_dependencies(relative: str, source: str) -> list[str]:
    return [
        f"services/{relative}:{source.count(chr(10), 0, match.start()) + 1} reads {what}"
        for pattern, what in HAND_WRITTEN.items()
        for match in re.finditer(pattern, source)
    ]


def test_services_use_the_kits_named_dependencies() -> None:
    errors = []
    for package, path in _modules():
        if package not in SHARED:
            errors += hand_written_dependencies(path.relative_to(SERVICES_DIR).as_posix(), path.read_text())
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize(
    "planted",
    [
        "    db = request.app.state.db\n",
        "User = Annotated[Principal, Depends(current_user)]\n",
        "Caller = Annotated[Principal, Depends(current_caller)]\n",
        'Admin = Annotated[Principal, Depends(require_group("admin"))]\n',
    ],
)
def test_a_hand_written_dependency_is_caught(planted: str) -> None:
    assert len(hand_written_dependencies("user/api.py", f'"""doc"""\n\n{planted}')) == 1
