"""The kit's request middleware (services/kit/middleware.py) as a caller and an operator see it: the request
id and server name on every answer, the body size limit at its exact boundary, the trace context passed on
only when valid, the access log line and the metrics of each request."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.context import forwarded_headers
from services.kit.metrics import HttpMetrics
from services.kit.middleware import RequestMiddleware
from services.kit.testing import TokenFactory
from tests.kit.demo_app import demo_app

LIMIT = 2048  # demo_app's max_body_bytes
TOO_LARGE = {"error": {"code": "payload_too_large", "message": f"body exceeds {LIMIT} bytes"}}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def body_of(size: int) -> bytes:
    """A valid item whose JSON is exactly `size` bytes."""
    shell = b'{"name": "", "quantity": 1}'
    return shell.replace(b'""', b'"' + b"x" * (size - len(shell)) + b'"')


def test_every_answer_names_its_server_and_request(client: TestClient) -> None:
    fresh = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])  # made here when none came
    assert fresh.headers["x-served-by"] == "demo/v7"
    assert client.get("/healthz").headers["x-request-id"] != fresh.headers["x-request-id"]
    assert client.get("/nope", headers={"x-request-id": "req-9"}).headers["x-request-id"] == "req-9"


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "streamed"])
def test_a_body_at_the_limit_is_served_and_one_byte_more_is_413(
    client: TestClient, tokens: TokenFactory, streamed: bool
) -> None:
    def send(body: bytes) -> httpx.Response:
        headers = {**tokens.headers(), "content-type": "application/json", "x-request-id": "req-big"}
        content = iter([body[:1000], body[1000:]]) if streamed else body
        return client.post("/items/1", content=content, headers=headers)

    assert send(body_of(LIMIT)).status_code == 200
    refused = send(body_of(LIMIT + 1))
    assert refused.status_code == 413
    assert refused.json() == TOO_LARGE
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["content-length"] == str(len(refused.content))  # a server sends it as given
    assert (refused.headers["x-served-by"], refused.headers["x-request-id"]) == ("demo/v7", "req-big")
    counted = re.findall(
        r'http_requests_total\{method="POST",route="[^"]+",service="demo",status="413"\} (\S+)',
        client.get("/metrics").text,
    )
    assert counted == ["1.0"]  # the refusal is counted once, as a 413


def test_the_trace_context_is_passed_on_only_when_valid() -> None:
    seen: list[httpx.Request] = []

    def downstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with TestClient(demo_app(httpx.MockTransport(downstream))) as client:
        client.get("/call", headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
        client.get("/call", headers={"traceparent": "00-not-a-trace-01", "tracestate": "vendor=1"})
    valid, malformed = (request.headers for request in seen)
    # the same trace (the parent id is this service's span when an earlier test started tracing in-process)
    assert (valid["traceparent"].split("-")[1], valid["tracestate"]) == (
        TRACEPARENT.split("-")[1],
        "vendor=1",
    )
    # not passed on (a new trace of this service's own when tracing runs in-process), nor its state
    assert malformed.get("traceparent") != "00-not-a-trace-01" and "tracestate" not in malformed


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("logger") == "kit.access"]


def test_each_request_has_one_access_log_line_with_what_an_operator_needs(
    client: TestClient, tokens: TokenFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    client.post("/items/42", json={"name": "x", "quantity": 1}, headers=tokens.headers())
    client.get("/nope")
    client.get("/boom")
    for quiet in ("/healthz", "/readyz", "/metrics"):  # probes and scrapes would drown the log
        client.get(quiet)
    lines = access_lines(capsys)
    assert [(r["method"], r["path"], r["route"], r["status"], r["msg"]) for r in lines] == [
        ("POST", "/items/42", "/items/{item_id}", 200, "POST /items/42 200"),
        ("GET", "/nope", "unmatched", 404, "GET /nope 404"),
        ("GET", "/boom", "/boom", 500, "GET /boom 500"),
    ]
    for line in lines:
        assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 60_000


async def asgi_call(
    app: ASGIApp, headers: list[tuple[bytes, bytes]], chunks: tuple[bytes, ...] = (b"",)
) -> list[Message]:
    """One request straight through the ASGI interface (as uvicorn makes it: the body in `chunks`, one
    http.request message each); returns the messages the app sent back."""
    sent: list[Message] = []
    bodies = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return bodies.pop(0) if bodies else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": "/x", "headers": headers}, receive, send)
    return sent


def limited(inner: ASGIApp) -> RequestMiddleware:
    return RequestMiddleware(inner, served_by="demo/v7", max_body_bytes=10, metrics=HttpMetrics("demo"))


async def test_header_names_in_any_case_are_read_and_the_body_size_is_not_passed_on() -> None:
    """The ASGI spec lets a server keep the header case (names "should be lowercased, but it is not
    required"): the request id, identity and size limit must work either way. The incoming Content-Length
    describes this request's body, so it is never among the headers passed on to neighbours."""
    seen: list[dict[str, str]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(forwarded_headers())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x/y")]})
        await send({"type": "http.response.body", "body": b"{}"})

    [start, _] = await asgi_call(
        limited(inner), [(b"X-Request-Id", b"req-up"), (b"X-User-Id", b"u-1"), (b"Content-Length", b"2")]
    )
    assert start["status"] == 200
    assert start["headers"] == [
        (b"content-type", b"x/y"),  # the app's own headers kept
        (b"x-served-by", b"demo/v7"),
        (b"x-request-id", b"req-up"),
    ]
    assert seen == [{"x-request-id": "req-up", "x-user-id": "u-1"}]
    [refused, _] = await asgi_call(limited(inner), [(b"Content-Length", b"11")])
    assert refused["status"] == 413  # declared over the limit


async def test_a_malformed_trace_context_is_never_among_the_headers_passed_on() -> None:
    """What the kit hands to the outgoing calls (forwarded_headers) when this service makes no spans of its
    own (the default): a valid traceparent and its tracestate as received; a malformed one (and its
    tracestate, which means nothing without it) dropped, so neighbours and the logs never see a made-up trace
    id. Checked at the middleware itself, so an OpenTelemetry tracer another test started in this process
    (which overwrites the headers on the way out) cannot hide it."""
    seen: list[dict[str, str]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(forwarded_headers())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    for traceparent in (TRACEPARENT, "00-not-a-trace-01"):
        headers = [
            (b"traceparent", traceparent.encode()),
            (b"tracestate", b"vendor=1"),
            (b"x-request-id", b"r"),
        ]
        await asgi_call(limited(inner), headers)
    assert seen == [
        {"traceparent": TRACEPARENT, "tracestate": "vendor=1", "x-request-id": "r"},
        {"x-request-id": "r"},
    ]


async def test_a_streamed_body_is_counted_across_its_chunks() -> None:
    async def reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200})  # no headers: ASGI's default is none
        await send({"type": "http.response.body", "body": b""})

    [served, _] = await asgi_call(limited(reads_the_body), [], (b"12345", b"12345"))
    assert (served["status"], served["headers"][0][0]) == (200, b"x-served-by")
    [refused, body] = await asgi_call(limited(reads_the_body), [], (b"123456", b"123456"))
    assert refused["status"] == 413 and json.loads(body["body"])["error"]["code"] == "payload_too_large"


async def test_a_body_over_the_limit_after_the_answer_started_cuts_it_off_without_a_second_answer() -> None:
    """An app that streams its answer while reading the body: once the answer started, a 413 can no
    longer be sent (a second response start breaks the connection); the body read is stopped instead."""

    async def echoes(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            if not message.get("more_body"):
                break

    sent = await asgi_call(limited(echoes), [], (b"123456", b"123456"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"123456"


async def test_a_request_without_an_id_passes_the_id_it_was_given_to_its_neighbours(
    tokens: TokenFactory,
) -> None:
    seen: list[httpx.Request] = []

    def downstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with TestClient(demo_app(httpx.MockTransport(downstream))) as client:
        answer = client.get("/call")
    assert seen[0].headers["x-request-id"] == answer.headers["x-request-id"]


def test_the_access_log_and_latency_measure_the_request_in_milliseconds(
    client: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([100.0, 100.2501234, 200.0, 200.0])  # the request, then the scrape
    monkeypatch.setattr("services.kit.middleware.time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    capsys.readouterr()
    client.get("/nope")
    [line] = access_lines(capsys)
    assert line["duration_ms"] == 250.12
    metrics = client.get("/metrics").text
    labels = r'method="GET",route="unmatched",service="demo",status="404"'
    pattern = r"http_request_duration_seconds_sum\{" + labels + r"\} (\S+)"
    assert [round(float(seconds), 7) for seconds in re.findall(pattern, metrics)] == [0.2501234]
