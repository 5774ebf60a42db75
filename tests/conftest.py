"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.dev import (
    SERVICES,
    FerretDB,
    Stack,
    available,
    ferretdb_binary,
    free_port,
    stack_env,
    with_free_ports,
)
from services.kit.testing import TokenFactory
from tests.logging_state import logging_switched_off

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"

# Fast clocks for the process-level tests: shipments move on within seconds.
STACK_ENV = {
    "SHIP_AFTER_SECONDS": "2",
    "DELIVER_AFTER_SECONDS": "600",
    "LOG_LEVEL": "INFO",
    "ADMIN_EMAILS": "admin@example.com",
}


@pytest.fixture(autouse=True)
def _logging_left_on() -> Iterator[None]:
    """Fails the test that leaves logging switched off (bench/in_process.py once did: the access-log tests
    that ran after it in the same worker failed)."""
    yield
    if problem := logging_switched_off():
        pytest.fail(problem)


@pytest.fixture
def tokens() -> TokenFactory:
    """Mints access tokens with a throw-away key; `tokens.trust_in(app)` makes an app accept them."""
    return TokenFactory()


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every service of the shop as a real `python -m services.<name>` process on free loopback ports, on
    the in-memory store, or with SHOP_TEST_STORE=ferretdb (`make integration-ferretdb`, in `make test`) on
    a FerretDB server of its own: the production code path (PyMongo's AsyncMongoClient) for real."""
    present = {s.name for s in available()}
    missing = [s.name for s in SERVICES if s.name not in present]
    if missing:
        pytest.fail(f"services missing from this checkout: {', '.join(missing)}")
    services = with_free_ports(SERVICES)
    extra = dict(STACK_ENV)
    database = None
    if os.environ.get("SHOP_TEST_STORE") == "ferretdb":
        data = tmp_path_factory.mktemp("ferretdb")
        database = FerretDB(ferretdb_binary(), free_port(), data, ARTIFACTS / "logs" / "ferretdb.log")
        (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
        database.start()
        extra["MONGO_URL"] = database.url
    stack = Stack(services, stack_env(services, extra), log_dir=ARTIFACTS / "logs")
    try:
        # Eight Python processes importing FastAPI at once: ~95 s to ready at load 48 on 2 cores (measured).
        stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()
        if database is not None:
            database.stop()


@pytest.fixture(scope="session")
def shop_stack(running_stack: Stack) -> str:
    """The frontend's base URL of the running stack."""
    return running_stack.url("frontend")
