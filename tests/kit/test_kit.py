"""The service kit, seen from the outside: what every service gets by calling `create_app`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit import ApiError, DatabaseSettings, ServiceSettings, create_app, load_settings, tracing
from services.kit.http import ServiceClient
from services.kit.jwt import JwksVerifier, Principal
from services.kit.settings import SettingsError
from services.kit.testing import TokenFactory
from tests.kit.demo_app import demo_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_operational_endpoints_answer(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"mongodb": "ok"}}
    client.get("/healthz")
    metrics = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/healthz",service="demo",status="200"} 2.0' in metrics
    assert "http_request_duration_seconds_bucket" in metrics


def test_every_response_says_who_served_it(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/nope"):
        assert client.get(path).headers["x-served-by"] == "demo/v7"


def test_metrics_use_the_route_template_not_the_path(client: TestClient, tokens: TokenFactory) -> None:
    for item_id in ("a", "b", "c"):
        client.post(f"/items/{item_id}", json={"name": "x", "quantity": 1}, headers=tokens.headers())
    metrics = client.get("/metrics").text
    assert 'route="/items/{item_id}",service="demo",status="200"} 3.0' in metrics
    assert 'route="/items/a"' not in metrics


def test_bad_input_gets_json_4xx(client: TestClient, tokens: TokenFactory) -> None:
    auth = tokens.headers()
    malformed = client.post(
        "/items/1", content=b"{nope", headers={**auth, "content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    missing = client.post("/items/1", json={"name": "x"}, headers=auth)
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["loc"] == ["body", "quantity"]
    wrong_type = client.post("/items/1", json={"name": "x", "quantity": "many"}, headers=auth)
    assert wrong_type.status_code == 422
    too_big = client.post("/items/1", json={"name": "x" * 5000, "quantity": 1}, headers=auth)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    assert client.get("/nope").json() == {"error": {"code": "not_found", "message": "Not Found"}}


def test_streamed_body_over_the_limit_is_refused(client: TestClient, tokens: TokenFactory) -> None:
    def chunks():
        for _ in range(10):
            yield b" " * 512

    response = client.post("/items/1", content=chunks(), headers=tokens.headers())
    assert response.status_code == 413


def test_domain_errors_and_bugs_are_json(client: TestClient) -> None:
    conflict = client.get("/teapot")
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": {"code": "conflict_here", "message": "already there", "details": {"id": "x"}}
    }
    bug = client.get("/boom")
    assert bug.status_code == 500
    assert bug.json()["error"]["code"] == "internal_error"
    assert "a bug" not in bug.text


def test_tokens_missing_expired_forged_or_wrong_group(client: TestClient, tokens: TokenFactory) -> None:
    body = {"name": "x", "quantity": 1}
    assert client.post("/items/1", json=body).status_code == 401
    assert client.post("/items/1", json=body, headers={"Authorization": "Bearer abc"}).status_code == 401
    expired = client.post("/items/1", json=body, headers=tokens.headers(expires_in=-5))
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "token expired"
    forger = TokenFactory(kid=tokens.kid)  # same key id, another key
    assert client.post("/items/1", json=body, headers=forger.headers()).status_code == 401
    ok = client.post("/items/1", json=body, headers=tokens.headers(sub="u-42"))
    assert ok.status_code == 200
    assert ok.json()["user"] == "u-42"
    assert client.get("/admin", headers=tokens.headers()).status_code == 403
    assert client.get("/admin", headers=tokens.headers(groups=["admin"], email="a@x.io")).json() == {
        "hello": "a@x.io"
    }


def test_routing_and_trace_headers_are_forwarded(tokens: TokenFactory) -> None:
    seen: list[httpx.Request] = []

    def downstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    app = demo_app(httpx.MockTransport(downstream))
    incoming = {
        "x-request-id": "req-1",
        "x-user-id": "u-1",
        "x-user-group": "beta",
        "canary": "true",
        "cookie": "canary=true",
        "user-agent": "Mozilla/5.0 (iPhone) Mobile",
        "authorization": "Bearer t",
        "traceparent": TRACEPARENT,
        "x-not-forwarded": "secret",
    }
    with TestClient(app) as test_client:
        assert test_client.get("/call", headers=incoming).json() == {"status": 200}
    sent = seen[0].headers
    for name in (
        "x-request-id",
        "x-user-id",
        "x-user-group",
        "canary",
        "cookie",
        "user-agent",
        "authorization",
    ):
        assert sent[name] == incoming[name], name
    assert "x-not-forwarded" not in sent
    assert sent["traceparent"].split("-")[1] == TRACE_ID


def test_unreachable_and_slow_dependencies_become_503_and_504() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler, status, code in (
        (refused, 503, "dependency_unavailable"),
        (slow, 504, "dependency_timeout"),
    ):
        with TestClient(demo_app(httpx.MockTransport(handler))) as test_client:
            response = test_client.get("/call")
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert "product" in response.json()["error"]["message"]


def test_a_request_with_traceparent_yields_spans_in_that_trace(client: TestClient) -> None:
    exporter = InMemorySpanExporter()
    tracing.export_to(exporter)
    client.get("/nope", headers={"traceparent": TRACEPARENT})
    trace_ids = {format(span.context.trace_id, "032x") for span in exporter.get_finished_spans()}
    assert TRACE_ID in trace_ids


def test_the_server_span_carries_the_request_id_and_user_id_but_never_the_token(
    client: TestClient, tokens: TokenFactory
) -> None:
    exporter = InMemorySpanExporter()
    tracing.export_to(exporter)
    token = tokens.token(sub="user-42")
    answer = client.post(
        "/items/a1",
        json={"name": "lamp", "quantity": 1},
        headers={
            "Authorization": f"Bearer {token}",
            "x-request-id": "req-span-1",
            "traceparent": TRACEPARENT,
        },
    )
    assert answer.status_code == 200, answer.text
    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID]
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert server, [s.name for s in spans]
    attributes = dict(server[0].attributes or {})
    assert attributes[tracing.REQUEST_ID_ATTRIBUTE] == "req-span-1"
    assert attributes[tracing.USER_ID_ATTRIBUTE] == "user-42"
    everything = repr([(s.name, dict(s.attributes or {}), [e.attributes for e in s.events]) for s in spans])
    assert token not in everything and "Bearer" not in everything


def test_a_request_without_an_id_gets_one_on_its_span_and_its_answer(client: TestClient) -> None:
    exporter = InMemorySpanExporter()
    tracing.export_to(exporter)
    answer = client.get("/nope", headers={"traceparent": TRACEPARENT})
    server = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert (
        server
        and dict(server[0].attributes or {})[tracing.REQUEST_ID_ATTRIBUTE] == answer.headers["x-request-id"]
    )


def test_logs_are_json_with_request_and_trace_id(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    client.get("/nope", headers={"x-request-id": "req-77", "traceparent": TRACEPARENT})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("path") == "/nope"]
    assert access, lines
    assert access[0]["request_id"] == "req-77"
    assert access[0]["trace_id"] == TRACE_ID
    assert access[0]["status"] == 404
    assert access[0]["service"] == "demo"


def test_while_spans_are_made_a_log_line_names_its_span(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = InMemorySpanExporter()
    tracing.export_to(exporter)
    capsys.readouterr()
    client.get("/nope", headers={"x-request-id": "req-78", "traceparent": TRACEPARENT})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [access] = [line for line in lines if line.get("path") == "/nope"]
    span_ids = {format(s.context.span_id, "016x") for s in exporter.get_finished_spans()}
    assert access["trace_id"] == TRACE_ID and access["span_id"] in span_ids


def test_a_call_to_another_service_logs_one_line_for_the_request_and_a_warning_when_the_call_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The callee's access line records a call that was answered (same request id): the caller logs its
    own request once, not also httpx's "HTTP Request: ..." line; a call that fails is the caller's warning."""
    answering = True

    def downstream(request: httpx.Request) -> httpx.Response:
        if not answering:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=[])

    with TestClient(demo_app(httpx.MockTransport(downstream))) as test_client:
        capsys.readouterr()
        assert test_client.get("/call", headers={"x-request-id": "req-5"}).status_code == 200
        answered = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        answering = False
        assert test_client.get("/call", headers={"x-request-id": "req-6"}).status_code == 503
        failed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["logger"], line.get("status")) for line in answered] == [("kit.access", 200)]
    assert [(line["logger"], line["level"]) for line in failed] == [
        ("kit.http", "warning"),
        ("kit.access", "info"),
    ]
    assert failed[0]["request_id"] == "req-6" and "cannot reach GET http://product:3000" in failed[0]["msg"]


def test_invalid_settings_stop_the_service_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as stopped:
        load_settings(ServiceSettings)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "PORT" in err
    assert "LOG_LEVEL" in err


def test_in_memory_store_only_without_mongo_url(caplog: pytest.LogCaptureFixture) -> None:
    from pymongo import AsyncMongoClient

    from services.kit.db import create_mongo_client

    with caplog.at_level(logging.WARNING):
        memory = create_mongo_client(DatabaseSettings(service_name="demo"))
    assert any(cls.__module__ == "mongomock_motor" for cls in type(memory).__mro__)
    assert "IN-MEMORY" in caplog.text
    real = create_mongo_client(DatabaseSettings(service_name="demo", mongo_url="mongodb://db.invalid:27017"))
    assert isinstance(real, AsyncMongoClient)


def test_without_mongo_url_or_the_in_memory_store_the_service_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What an image does without MONGO_URL: mongomock-motor is a dev dependency the images do not have."""
    from services.kit.db import create_mongo_client
    from services.kit.settings import ConfigurationError

    monkeypatch.setitem(sys.modules, "mongomock_motor", None)  # `import mongomock_motor` raises ImportError
    with pytest.raises(ConfigurationError) as refused:
        create_mongo_client(DatabaseSettings(service_name="order"))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("MONGO_URL is not set") and "mongodb://" in message
    assert message.endswith("/order")  # the service's own database


async def test_jwks_is_cached_and_refetched_for_an_unknown_key() -> None:
    first, second = TokenFactory(kid="k1"), TokenFactory(kid="k2")
    published = {"keys": first.jwks()["keys"]}
    fetches = []

    def jwks_endpoint(request: httpx.Request) -> httpx.Response:
        fetches.append(request.url.path)
        return httpx.Response(200, json=published)

    verifier = JwksVerifier(
        "http://auth/.well-known/jwks.json",
        "shop-auth",
        "shop",
        min_refresh=0,
        transport=httpx.MockTransport(jwks_endpoint),
    )
    assert (await verifier.verify(first.token(sub="a"))).sub == "a"
    assert (await verifier.verify(first.token(sub="b"))).sub == "b"
    assert len(fetches) == 1  # cached
    published["keys"] = published["keys"] + second.jwks()["keys"]  # key rotation at the auth service
    assert (await verifier.verify(second.token(sub="c"))).sub == "c"
    assert len(fetches) == 2
    with pytest.raises(ApiError) as refused:
        await verifier.verify(TokenFactory(kid="k3").token())
    assert refused.value.status == 401


def test_shutdown_hooks_run_in_reverse_and_readiness_stops_first() -> None:
    order: list[str] = []

    async def start_a(app: FastAPI) -> None:
        order.append("start a")

    async def start_b(app: FastAPI) -> None:
        order.append("start b")

    async def stop_a(app: FastAPI) -> None:
        order.append(f"stop a (shutting down={app.state.shutting_down})")

    async def stop_b(app: FastAPI) -> None:
        order.append("stop b")

    app = create_app(
        DatabaseSettings(service_name="demo"),
        title="demo",
        startup=[start_a, start_b],
        shutdown=[stop_a, stop_b],
    )
    with TestClient(app):
        pass
    assert order == ["start a", "start b", "stop b", "stop a (shutting down=True)"]


def test_kit_does_not_block_the_event_loop_on_concurrent_requests(tokens: TokenFactory) -> None:
    async def many() -> list[int]:
        app = demo_app()
        tokens.trust_in(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
            responses = await asyncio.gather(*(http.get("/healthz") for _ in range(50)))
        return [r.status_code for r in responses]

    assert asyncio.run(many()) == [200] * 50


def test_egress_calls_do_not_leak_the_shoppers_credentials() -> None:
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    router = APIRouter()

    @router.get("/egress")
    async def egress(request: Request) -> dict[str, bool]:
        await request.app.state.http.post("http://api.payments.example/v1/charges", forward=False)
        return {"ok": True}

    settings = DatabaseSettings(service_name="demo")
    app = create_app(settings, title="demo", routers=[router])
    app.state.http = ServiceClient(settings, transport=httpx.MockTransport(provider))
    with TestClient(app) as test_client:
        test_client.get(
            "/egress",
            headers={
                "authorization": "Bearer secret",
                "cookie": "session=s",
                "x-request-id": "r-9",
                "x-user-id": "u-1",
                "traceparent": TRACEPARENT,
            },
        )
    sent = seen[0].headers
    assert "authorization" not in sent
    assert "cookie" not in sent
    assert "x-user-id" not in sent
    assert sent["x-request-id"] == "r-9"
    assert sent["traceparent"].split("-")[1] == TRACE_ID


def test_timestamps_have_one_sortable_format() -> None:
    from services.kit import clock

    earlier, later = clock.now_iso(), clock.now_iso(offset_seconds=1)
    assert earlier.endswith("Z")
    assert len(earlier) == len(later) == 27
    assert earlier < later
    assert clock.parse(earlier).tzinfo is not None


def test_a_service_started_before_mongodb_waits_for_it_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from pymongo.errors import ServerSelectionTimeoutError

    from services.kit import app as kit_app

    monkeypatch.setattr(kit_app, "RETRY_DELAYS", (0.05,))
    attempts: list[str] = []

    async def create_indexes(app: FastAPI) -> None:
        attempts.append("indexes")
        if len(attempts) < 3:
            raise ServerSelectionTimeoutError("mongodb:27017: [Errno 111] Connection refused")

    async def seed(app: FastAPI) -> None:
        attempts.append("seed")

    app = create_app(DatabaseSettings(service_name="demo"), title="demo", startup=[create_indexes, seed])
    with TestClient(app) as test_client:
        first = test_client.get("/readyz")
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "starting"
        assert test_client.get("/healthz").status_code == 200  # alive: no restart loop
        deadline = time.monotonic() + 5
        while test_client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, attempts
            time.sleep(0.02)
    assert attempts == ["indexes", "indexes", "indexes", "seed"]


def test_records_are_visible_to_their_owner_and_admins() -> None:
    def principal(sub: str, *groups: str) -> Principal:
        return Principal(sub=sub, email=f"{sub}@x.io", groups=groups, token="t")

    assert principal("u1", "customer").may_see("u1")
    assert not principal("u2", "customer").may_see("u1")
    assert principal("root", "customer", "admin").may_see("u1")
