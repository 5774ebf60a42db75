"""One ASGI middleware for what every request needs: ids, routing headers, size limit, metrics, logs."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.context import (
    FORWARDED_HEADERS,
    TRACE_CONTEXT_HEADERS,
    forwarded_var,
    request_id_var,
    valid_traceparent,
)
from services.kit.metrics import HttpMetrics
from services.kit.tracing import record_request_id

log = logging.getLogger("kit.access")
_QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}
# The request headers the middleware reads, by their raw (lower-case) name: one pass over the headers.
_READ = {name.encode(): name for name in (*FORWARDED_HEADERS, *TRACE_CONTEXT_HEADERS, "content-length")}


class _BodyTooLarge(Exception):
    pass


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, served_by: str, max_body_bytes: int, metrics: HttpMetrics) -> None:
        self.app = app
        self.served_by = served_by.encode()
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        forwarded: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = _READ.get(raw_name) or _READ.get(raw_name.lower())
            if name is not None:
                forwarded[name] = raw_value.decode("latin-1")
        declared = forwarded.pop("content-length", "")
        if not valid_traceparent(forwarded.get("traceparent", "")):
            # none, or malformed: not passed on, and a tracestate without its traceparent means nothing (W3C)
            forwarded.pop("traceparent", None)
            forwarded.pop("tracestate", None)
        # A new id is 128 random bits as 32 hex digits, as uuid.uuid4().hex was without building a UUID
        # object (2.4 % of a /healthz request's CPU, make bench-profile CASE=kit-healthz).
        request_id = forwarded.get("x-request-id") or os.urandom(16).hex()
        forwarded["x-request-id"] = request_id
        record_request_id(request_id)
        rid_token = request_id_var.set(request_id)
        fwd_token = forwarded_var.set(forwarded)
        started = time.perf_counter()
        status = 500
        response_started = False

        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, request_id)
            self._finish(scope, 413, started)
            request_id_var.reset(rid_token)
            forwarded_var.reset(fwd_token)
            return

        received = 0
        refused = False

        async def limited_receive() -> Message:
            # A body streamed without Content-Length: answer 413 as soon as it passes the limit.
            # Frameworks turn errors raised while reading into their own 400, so the 413 is sent here.
            nonlocal received, refused, status, response_started
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not response_started:
                        await self._too_large(send, request_id)
                        response_started = refused = True
                        status = 413
                    raise _BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if refused:
                return  # the 413 already went out; drop the app's own error response
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-served-by", self.served_by),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            pass  # the 413 went out from limited_receive
        finally:
            self._finish(scope, status, started)
            request_id_var.reset(rid_token)
            forwarded_var.reset(fwd_token)

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = json.dumps(
            {"error": {"code": "payload_too_large", "message": f"body exceeds {self.max_body_bytes} bytes"}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-served-by", self.served_by),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        self.metrics.observe(scope["method"], route, status, elapsed)
        if scope["path"] not in _QUIET_PATHS:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            log.info("%s %s %s", scope["method"], scope["path"], status, extra={"fields": fields})


def _route_template(scope: Scope) -> str:
    """The matched route's template (`/products/{product_id}`), so metrics don't explode per id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
