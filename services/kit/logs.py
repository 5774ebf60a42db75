"""JSON logs, one object a line, carrying the request id and the trace id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from services.kit import tracing
from services.kit.context import incoming_trace_id, request_id_var


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, version: str) -> None:
        super().__init__()
        self.service = service
        self.version = version

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "version": self.version,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        span_context = trace.get_current_span().get_span_context() if tracing.enabled() else None
        if span_context is not None and span_context.is_valid:  # this process makes spans
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        elif trace_id := incoming_trace_id():  # it passes the caller's trace context on
            entry["trace_id"] = trace_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (test capture replaces it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def setup_logging(service: str, version: str, level: str) -> None:
    """Route every logger (ours, uvicorn's) through one JSON handler on stdout."""
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service, version))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our own middleware logs each request; uvicorn's access line would say it twice. httpx logs every
    # outgoing call at INFO ("HTTP Request: GET ... 200 OK"): the callee's access line says it, with the same
    # request id, and a call that fails is logged by ServiceClient (services/kit/http.py). That second JSON
    # line per hop was ~2 % of the frontend's CPU (docs/performance.md, fifth pass).
    for name in ("uvicorn.access", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
