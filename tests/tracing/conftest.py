"""The shop as `make dev TRACING=jaeger` runs it, on free ports: Jaeger, a real MongoDB wire-protocol server
(FerretDB, so PyMongo's own instrumentation records the database operations) and the eight services exporting
to Jaeger. Only `make trace-test` (in `make test`) runs these tests: it sets SHOP_TRACE_TEST=1 after making
sure the pinned Jaeger and FerretDB exist (downloaded or built from source: minutes the first time, then
cached).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.dev import SERVICES, FerretDB, Stack, ferretdb_binary, free_port, stack_env, with_free_ports
from scripts.jaeger import Jaeger, JaegerPorts, TraceQuery, jaeger_binary, tracing_env
from tests.tracing.helpers import TracedShop

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "artifacts" / "logs" / "tracing"


@pytest.fixture(autouse=True)
def _only_under_make_trace_test() -> None:
    if os.environ.get("SHOP_TRACE_TEST") != "1":
        pytest.skip("run by `make trace-test` (it provides the pinned Jaeger and FerretDB first)")


@pytest.fixture(scope="module")
def traced_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedShop]:
    if os.environ.get("SHOP_TRACE_TEST") != "1":
        pytest.skip("run by `make trace-test`")
    LOGS.mkdir(parents=True, exist_ok=True)
    jaeger = Jaeger(jaeger_binary(), JaegerPorts.free(), log_path=LOGS / "jaeger.log")
    database = FerretDB(
        ferretdb_binary(), free_port(), tmp_path_factory.mktemp("ferretdb"), LOGS / "ferretdb.log"
    )
    services = with_free_ports(SERVICES)
    stack = Stack(services, stack_env(services, {"MONGO_URL": database.url}), log_dir=LOGS)
    try:
        jaeger.start()
        database.start()
        stack.service_env = {s.name: tracing_env(s.name, jaeger) for s in services}
        stack.start(timeout=240)  # a loaded 2-core machine needs ~100 s to import eight services
        yield TracedShop(stack, jaeger, TraceQuery(jaeger.ui_url))
    finally:
        stack.stop()
        database.stop()
        jaeger.stop()
