"""Per-request context: the request id and the headers to pass on to the next hop."""

from __future__ import annotations

from contextvars import ContextVar

# Headers a mesh routes on (and the caller's identity): forwarded unchanged on every outgoing call.
# Trace context (traceparent, tracestate) is injected by OpenTelemetry, not copied.
FORWARDED_HEADERS = (
    "x-request-id",
    "x-user-id",
    "x-user-group",
    "canary",
    "cookie",
    "user-agent",
    "authorization",
)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
forwarded_var: ContextVar[dict[str, str] | None] = ContextVar("forwarded_headers", default=None)


def forwarded_headers() -> dict[str, str]:
    """The routing headers of the request being handled (empty outside a request)."""
    return dict(forwarded_var.get() or {})
