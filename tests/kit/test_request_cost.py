"""What a request must not cost: the import machinery.

A module imported inside a request handler is found once and then cached; an import that *fails* is tried
again on every request, walking every folder of `sys.path` (httpcore asks for `sniffio` on each call: without
it installed, 10 % of the frontend's CPU went there, docs/performance.md). These tests watch the finders of
`sys.meta_path` while a kit app serves requests that call a neighbour over real HTTP.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from scripts.dev import free_port
from services.kit import ServiceSettings, create_app


class ImportSpy(importlib.abc.MetaPathFinder):
    """Records every module the import system is asked to find (it never finds one itself)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.asked.append(fullname)
        return None


@pytest.fixture
def import_spy() -> Iterator[ImportSpy]:
    spy = ImportSpy()
    sys.meta_path.insert(0, spy)
    try:
        yield spy
    finally:
        sys.meta_path.remove(spy)


@pytest.fixture(scope="module")
def neighbour() -> Iterator[str]:
    """A kit app served by uvicorn on a free port, as another service would be."""
    router = APIRouter()

    @router.get("/products")
    async def products() -> dict[str, list[str]]:
        return {"items": ["a", "b"]}

    app = create_app(ServiceSettings(service_name="neighbour"), title="neighbour", routers=[router])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the neighbour did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def caller(neighbour: str, *, planted_import: bool = False) -> FastAPI:
    router = APIRouter()

    @router.get("/call")
    async def call(request: Request) -> dict[str, object]:
        if planted_import:
            with contextlib.suppress(ImportError):
                import a_module_nobody_installed  # type: ignore[import-not-found]  # noqa: F401
        answer = await request.app.state.http.get(f"{neighbour}/products")
        return {"status": answer.status_code, "items": answer.json()["items"]}

    return create_app(ServiceSettings(service_name="caller"), title="caller", routers=[router])


def _serve(app: FastAPI, spy: ImportSpy, requests: int = 20) -> list[str]:
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with TestClient(app) as client:
        for _ in range(5):  # first requests may import lazily, once
            assert client.get("/call", headers=headers).status_code == 200
        assert client.get("/healthz").status_code == 200
        spy.asked.clear()
        for _ in range(requests):
            assert client.get("/call", headers=headers).json()["status"] == 200
            assert client.get("/healthz").status_code == 200
        return list(spy.asked)


def test_serving_requests_that_call_a_neighbour_imports_nothing(
    neighbour: str, import_spy: ImportSpy
) -> None:
    asked = _serve(caller(neighbour), import_spy)
    assert asked == [], f"imports attempted while serving requests: {sorted(set(asked))}"


def test_a_planted_import_in_a_handler_is_seen(neighbour: str, import_spy: ImportSpy) -> None:
    asked = _serve(caller(neighbour, planted_import=True), import_spy, requests=3)
    assert asked.count("a_module_nobody_installed") == 3
