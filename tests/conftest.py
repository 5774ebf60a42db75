"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.dev import SERVICES, Stack, available, stack_env, with_free_ports
from services.kit.testing import TokenFactory

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"

# Fast clocks for the process-level tests: shipments move on within seconds.
STACK_ENV = {
    "SHIP_AFTER_SECONDS": "2",
    "DELIVER_AFTER_SECONDS": "600",
    "LOG_LEVEL": "INFO",
    "ADMIN_EMAILS": "admin@example.com",
}


@pytest.fixture
def tokens() -> TokenFactory:
    """Mints access tokens with a throw-away key; `tokens.trust_in(app)` makes an app accept them."""
    return TokenFactory()


@pytest.fixture(scope="session")
def running_stack() -> Iterator[Stack]:
    """Every service of the shop as a real `python -m services.<name>` process on free loopback ports."""
    present = {s.name for s in available()}
    missing = [s.name for s in SERVICES if s.name not in present]
    if missing:
        pytest.fail(f"services missing from this checkout: {', '.join(missing)}")
    services = with_free_ports(SERVICES)
    stack = Stack(services, stack_env(services, STACK_ENV), log_dir=ARTIFACTS / "logs")
    try:
        # Eight Python processes importing FastAPI at once: ~95 s to ready at load 48 on 2 cores (measured).
        stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def shop_stack(running_stack: Stack) -> str:
    """The frontend's base URL of the running stack."""
    return running_stack.url("frontend")
