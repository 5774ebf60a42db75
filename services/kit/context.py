"""Per-request context: the request id and the headers to pass on to the next hop."""

from __future__ import annotations

import re
from contextvars import ContextVar

# Headers a mesh routes on (and the caller's identity): forwarded unchanged on every outgoing call.
FORWARDED_HEADERS = (
    "x-request-id",
    "x-user-id",
    "x-user-group",
    "canary",
    "cookie",
    "user-agent",
    "authorization",
)
# The W3C trace context, forwarded as received (when a well-formed `traceparent` came in). When this process
# makes spans (services/kit/tracing.py), OpenTelemetry replaces both with the current span's context.
TRACE_CONTEXT_HEADERS = ("traceparent", "tracestate")
# version-traceid-parentid-flags (https://www.w3.org/TR/trace-context/#traceparent-header-field-values);
# a later version may append fields after the flags.
_TRACEPARENT = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$"
)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
forwarded_var: ContextVar[dict[str, str] | None] = ContextVar("forwarded_headers", default=None)


def valid_traceparent(value: str) -> bool:
    return bool(_TRACEPARENT.match(value)) and (value[:2] != "00" or len(value) == 55)


def forwarded_headers() -> dict[str, str]:
    """The routing headers and trace context of the request being handled (empty outside a request)."""
    return dict(forwarded_var.get() or {})


def incoming_trace_id() -> str | None:
    """The trace id of the request being handled, from the `traceparent` it came with (None without one)."""
    traceparent = (forwarded_var.get() or {}).get("traceparent")
    return traceparent[3:35] if traceparent else None
