"""Auth, user and product as real processes on loopback: HTTP and gRPC, nothing in-process."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from scripts.dev import SERVICES, Stack
from services.protos import inventory_pb2, inventory_pb2_grpc

pytestmark = pytest.mark.timeout(180)
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_every_service_answers_health_readiness_and_metrics(running_stack: Stack) -> None:
    for service in SERVICES:
        base = running_stack.url(service.name)
        for path in ("/healthz", "/readyz", "/metrics"):
            response = httpx.get(base + path, timeout=5)
            assert response.status_code == 200, (service.name, path, response.text)
            assert response.headers["x-served-by"] == f"{service.name}/v1"
        assert "http_requests_total" in httpx.get(base + "/metrics", timeout=5).text


def test_register_login_profile_and_catalog_over_http(running_stack: Stack) -> None:
    auth, user, product = (running_stack.url(n) for n in ("auth", "user", "product"))
    email = f"it-{uuid.uuid4().hex[:8]}@example.com"
    registered = httpx.post(
        f"{auth}/auth/register",
        json={"email": email, "password": "correct horse 42", "name": "Ada"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    assert registered.headers["x-served-by"] == "auth/v1"
    again = httpx.post(
        f"{auth}/auth/register",
        json={"email": email, "password": "correct horse 42", "name": "Ada"},
        timeout=10,
    )
    assert again.status_code == 409
    login = httpx.post(
        f"{auth}/auth/login", json={"email": email, "password": "correct horse 42"}, timeout=10
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]

    me = httpx.get(f"{user}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    assert me.headers["x-served-by"] == "user/v1"
    assert httpx.get(f"{user}/users/me", timeout=10).status_code == 401

    catalog = httpx.get(f"{product}/products", params={"page_size": 50}, timeout=10)
    assert catalog.status_code == 200
    assert catalog.headers["x-served-by"] == "product/v1"
    assert catalog.json()["total"] >= 20


def test_a_traceparent_shows_up_in_the_service_log(running_stack: Stack) -> None:
    traceparent = f"00-{TRACE_ID}-b7ad6b7169203331-01"
    # urllib, not httpx: once an app was built in this test process, OpenTelemetry's httpx instrumentation
    # is on here too and would replace our traceparent with its own.
    request = urllib.request.Request(
        f"{running_stack.url('product')}/products", headers={"traceparent": traceparent}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert running_stack.log_dir is not None
    log_file = running_stack.log_dir / "product.log"
    deadline = time.monotonic() + 10  # the process writes its access log line just after answering
    while f'"trace_id": "{TRACE_ID}"' not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f'"trace_id": "{TRACE_ID}"' in log_file.read_text()


def _wait_for_log(log_file: Path, text: str) -> str:
    deadline = time.monotonic() + 10  # the process writes its access log line just after answering
    while text not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    return log_file.read_text()


def test_the_frontend_passes_the_callers_trace_context_on_without_tracing(running_stack: Stack) -> None:
    """No OTLP export here, so no service makes spans; the frontend still hands the incoming trace context to
    product (a mesh's proxies join their spans by it), and a malformed traceparent goes nowhere."""
    trace_id = uuid.uuid4().hex
    sent = f"00-{trace_id}-b7ad6b7169203331-01"
    request = urllib.request.Request(
        f"{running_stack.url('frontend')}/api/products",
        headers={"traceparent": sent, "tracestate": "vendor=1", "x-request-id": f"rid-{trace_id}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert running_stack.log_dir is not None
    product_log = _wait_for_log(running_stack.log_dir / "product.log", f"rid-{trace_id}")
    lines = [json.loads(line) for line in product_log.splitlines() if f"rid-{trace_id}" in line]
    assert lines and all(line.get("trace_id") == trace_id for line in lines), lines

    malformed = urllib.request.Request(
        f"{running_stack.url('frontend')}/api/products",
        headers={"traceparent": "00-not-a-trace-01", "x-request-id": f"bad-{trace_id}"},
    )
    with urllib.request.urlopen(malformed, timeout=10) as response:
        assert response.status == 200
    product_log = _wait_for_log(running_stack.log_dir / "product.log", f"bad-{trace_id}")
    lines = [json.loads(line) for line in product_log.splitlines() if f"bad-{trace_id}" in line]
    assert lines and all("trace_id" not in line for line in lines), lines


async def _reserve(stub: inventory_pb2_grpc.InventoryStub, order_id: str, product_id: str, qty: int) -> str:
    request = inventory_pb2.ReserveRequest(
        order_id=order_id, items=[inventory_pb2.Item(product_id=product_id, quantity=qty)]
    )
    try:
        reply = await stub.Reserve(request, timeout=10)
        return str(reply.status)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name


async def test_twenty_concurrent_reservations_for_the_last_unit(running_stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{running_stack.url('product')}/products", params={"page_size": 50})
    catalog = response.json()
    product_id = catalog["items"][-1]["id"]
    async with grpc.aio.insecure_channel(running_stack.grpc_target()) as channel:
        stub = inventory_pb2_grpc.InventoryStub(channel)
        stock = await stub.GetStock(inventory_pb2.GetStockRequest(product_ids=[product_id]), timeout=10)
        available = stock.levels[0].available
        assert available >= 1
        drain = f"drain-{uuid.uuid4().hex}"
        if available > 1:
            assert await _reserve(stub, drain, product_id, available - 1) == "RESERVED"
        racers = [f"race-{i}-{uuid.uuid4().hex}" for i in range(20)]
        outcomes = await asyncio.gather(*(_reserve(stub, order, product_id, 1) for order in racers))
        assert outcomes.count("RESERVED") == 1, outcomes
        assert set(outcomes) == {"RESERVED", "FAILED_PRECONDITION"}
        after = await stub.GetStock(inventory_pb2.GetStockRequest(product_ids=[product_id]), timeout=10)
        assert after.levels[0].available == 0
        # Give everything back so other tests find the catalog as it was.
        for order in [drain, *racers]:
            await stub.Release(inventory_pb2.ReleaseRequest(order_id=order), timeout=10)
        restored = await stub.GetStock(inventory_pb2.GetStockRequest(product_ids=[product_id]), timeout=10)
        assert restored.levels[0].available == available
