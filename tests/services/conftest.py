"""Checks every service test gets: each 4xx a service answered is documented in its OpenAPI document."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.kit.testing import undocumented_errors


def apps_in(values: Iterable[Any]) -> list[FastAPI]:
    """Apps a test used: fixtures that are apps, clients of apps, tuples or dataclasses of them."""
    found: dict[int, FastAPI] = {}

    def visit(value: Any, depth: int = 0) -> None:
        if depth > 2:
            return
        if isinstance(value, FastAPI) and hasattr(value.state, "metrics"):
            found[id(value)] = value
        elif isinstance(value, TestClient):
            visit(value.app, depth + 1)
        elif isinstance(value, httpx.AsyncClient) and isinstance(value._transport, httpx.ASGITransport):
            visit(value._transport.app, depth + 1)
        elif isinstance(value, tuple | list):
            for item in value:
                visit(item, depth + 1)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for item in vars(value).values():
                visit(item, depth + 1)

    for value in values:
        visit(value)
    return list(found.values())


@pytest.fixture(autouse=True)
def every_error_answer_is_documented(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no app it used answered a 4xx its OpenAPI document does not list for that route
    (the documents list the 400/401/403/404/409/422/429 answers the services really give)."""
    yield
    problems = [p for app in apps_in(request.node.funcargs.values()) for p in undocumented_errors(app)]
    if problems:
        pytest.fail("undocumented error answers:\n" + "\n".join(problems), pytrace=False)
