"""CPU-heavy work in threads has bounded memory: it runs on the kit's fixed CpuPool, never on a growing pool.

The kind of defect (auth OOM-killed by Argon2 buffers kept in one malloc arena per thread, see
services/kit/cpu_pool.py): any work a service hands to a thread pool that grows with concurrency. Two
ways in, each checked over every service, each with a planted instance the check must find:
- explicit offloads (`anyio.to_thread.run_sync`, `asyncio.to_thread`, `run_in_executor`, `run_in_threadpool`,
  a new `ThreadPoolExecutor` or `Thread`) anywhere in services/ except the kit's CpuPool;
- implicit ones: FastAPI runs every sync (`def`) endpoint and dependency on anyio's shared pool (40 threads).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import iter_route_contexts

from services.kit import ServiceSettings, create_app
from services.kit.cpu_pool import CpuPool
from services.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]
THE_POOL = ROOT / "services" / "kit" / "cpu_pool.py"
OFFLOADS = {
    "to_thread",  # asyncio.to_thread, anyio.to_thread(.run_sync)
    "run_in_executor",
    "run_in_threadpool",
    "iterate_in_threadpool",
    "ThreadPoolExecutor",
    "Thread",
}
OFFLOAD_MODULES = ("anyio.to_thread", "starlette.concurrency", "concurrent.futures", "threading")


def thread_offloads(source: str, filename: str = "<source>") -> list[str]:
    """Where `source` hands work to a thread (pool) itself: `file:line what`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in OFFLOADS:
            name = node.attr
        elif isinstance(node, ast.Name) and node.id in OFFLOADS:
            name = node.id
        elif isinstance(node, ast.ImportFrom) and node.module in OFFLOAD_MODULES:
            name = f"from {node.module} import ..."
        elif isinstance(node, ast.Import):
            name = next((a.name for a in node.names if a.name in OFFLOAD_MODULES), None)
        if name:
            found.append(f"{filename}:{node.lineno} {name}")
    return found


def _call_of(call: Callable[..., Any]) -> Callable[..., Any]:
    dunder = getattr(call, "__call__", None)  # noqa: B004 - a callable instance, e.g. require_group("admin")
    return call if inspect.isfunction(call) or inspect.ismethod(call) or dunder is None else dunder


def sync_request_work(app: FastAPI) -> list[str]:
    """Endpoints and dependencies FastAPI would run on its shared thread pool (sync `def`s)."""
    found = []

    def visit(dependant: Any, path: str) -> Iterator[str]:
        call = dependant.call
        if call is not None:
            target = _call_of(call)
            if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
                yield f"{path} {getattr(call, '__qualname__', repr(call))}"
        for sub in dependant.dependencies:
            yield from visit(sub, path)

    routes = 0
    # Every route as served, included routers and their dependencies too (what FastAPI's OpenAPI walks).
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            routes += 1
            found += visit(dependant, str(route.path))
    if routes == 0:
        raise AssertionError("found no FastAPI route to check: has FastAPI's routing changed?")
    return sorted(set(found))


def service_app(name: str) -> FastAPI:
    settings_class = import_module(f"services.{name}.settings").Settings
    settings = settings_class(mongo_url="mongodb://mongodb.invalid:27017")
    app: FastAPI = import_module(f"services.{name}.app").build_app(settings)
    return app


# --- the checks, on the real code ------------------------------------------------------------------


def test_no_service_offloads_work_to_threads_except_through_the_cpu_pool() -> None:
    found = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        if path == THE_POOL or "protos" in path.parts:
            continue
        found += thread_offloads(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, "use services.kit.cpu_pool.CpuPool for work in threads:\n" + "\n".join(found)


@pytest.mark.parametrize("service", SERVICES)
def test_every_endpoint_and_dependency_is_async(service: str) -> None:
    found = sync_request_work(service_app(service))
    assert not found, f"sync endpoints/dependencies run on FastAPI's shared thread pool: {found}"


# --- the checks find planted instances --------------------------------------------------------------


@pytest.mark.parametrize(
    "planted",
    [
        "import anyio.to_thread\nasync def f(): await anyio.to_thread.run_sync(g)",
        "import asyncio\nasync def f(): await asyncio.to_thread(g)",
        "async def f(loop): await loop.run_in_executor(None, g)",
        "from starlette.concurrency import run_in_threadpool",
        "from concurrent.futures import ThreadPoolExecutor\npool = ThreadPoolExecutor(8)",
        "import threading\nthreading.Thread(target=g).start()",
    ],
)
def test_the_offload_check_finds_a_planted_offload(planted: str) -> None:
    assert thread_offloads(planted)


def test_the_offload_check_passes_plain_async_code() -> None:
    assert not thread_offloads("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n")


def test_the_sync_work_check_finds_a_planted_sync_endpoint_and_dependency() -> None:
    router = APIRouter()

    def hash_in_a_thread() -> str:  # sync dependency
        return "x"

    @router.get("/sync")
    def sync_endpoint() -> dict[str, str]:
        return {}

    @router.get("/async")
    async def async_endpoint(value: str = Depends(hash_in_a_thread)) -> dict[str, str]:
        return {"value": value}

    settings = ServiceSettings(service_name="demo")
    app = create_app(settings, title="demo", routers=[router])
    found = sync_request_work(app)
    assert any(f.startswith("/sync ") and "sync_endpoint" in f for f in found), found
    assert any(f.startswith("/async ") and "hash_in_a_thread" in f for f in found), found


# --- the pool itself -------------------------------------------------------------------------------


async def test_the_pool_never_uses_more_threads_than_it_has() -> None:
    import threading

    pool = CpuPool("test", threads=2)
    names = await asyncio.gather(*(pool.run(lambda: threading.current_thread().name) for _ in range(50)))
    assert 1 <= len(set(names)) <= 2 and all(n.startswith("cpu-test") for n in names)


async def test_the_pool_returns_results_and_raises_errors() -> None:
    pool = CpuPool("test", threads=1)
    assert await pool.run(pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        await pool.run(lambda: 1 / 0)
    with pytest.raises(ValueError):
        CpuPool("none", threads=0)
