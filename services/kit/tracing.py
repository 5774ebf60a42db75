"""OpenTelemetry tracing: spans are made only where they go somewhere, the trace context always travels on.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set, every service runs the SDK's tracer
provider with an OTLP exporter and instruments FastAPI, httpx, gRPC and PyMongo: server and client spans,
the W3C trace context of the current span on every outgoing call. The standard variables configure it:
`OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP), `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (the SDK
reads them; the shop sets `parentbased_traceidratio`), `OTEL_SDK_DISABLED`. Every server span carries the
request id (`guid:x-request-id`, the tag Istio's Envoy proxies use, so one search finds proxy and application
spans) and, once a token is verified, the user id (`user.id`), never the token.

Without export nothing is instrumented: a span nobody exports costs the same as one that is
(docs/performance.md) and shows nothing, so the kit passes the incoming `traceparent`/`tracestate` on
unchanged instead (`services/kit/middleware.py`), as the mesh docs ask of applications: the proxies' spans
still join into one trace, and the logs still carry its trace id. Nor is the SDK imported then (it loads
psutil for its resource detection): 1.5 MB of every service's idle memory (docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:  # the SDK (and psutil, which its resource detection loads) only in a process that exports
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("kit.tracing")
_provider: TracerProvider | None = None
_identity = ("service", "v1")  # service name and version of the process (the last setup_tracing call)
_uninstrumented: weakref.WeakSet[Any] = weakref.WeakSet()  # apps built while tracing was off
_EXPORT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EXCLUDED_URLS = "healthz,readyz,metrics"  # probes and scrapes: no spans
REQUEST_ID_ATTRIBUTE = "guid:x-request-id"
USER_ID_ATTRIBUTE = "user.id"  # OpenTelemetry semantic conventions (enduser.id is deprecated)


def record_request_id(request_id: str) -> None:
    """Put the request id on the span of the request being handled (nothing when it is not sampled)."""
    if _provider is None:  # no spans in this process: not even the lookup of the current one
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def record_user(user_id: str) -> None:
    """Put the signed-in user's id (a token's `sub`) on the span of the request being handled."""
    if _provider is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(USER_ID_ATTRIBUTE, user_id)


def export_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(os.environ.get(name) for name in _EXPORT_VARIABLES)


def enabled() -> bool:
    """Whether this process makes spans (OTLP export configured, or a test called `export_to`)."""
    return _provider is not None


def setup_tracing(service: str, version: str) -> TracerProvider | None:
    """Start tracing once per process when OTLP export is configured; None when it is not."""
    global _identity
    _identity = (service, version)
    if _provider is not None:
        return _provider
    if not export_configured():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    log.info("tracing: exporting spans over OTLP")
    return _start(BatchSpanProcessor(OTLPSpanExporter()))


def _start(processor: SpanProcessor) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    global _provider
    service, version = _identity
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", service), "service.version": version}
    )
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(processor)
    trace.set_tracer_provider(_provider)
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    _instrument_libraries()
    for app in list(_uninstrumented):
        instrument_app(app)
    return _provider


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
    from opentelemetry.instrumentation.grpc.filters import negate, service_name
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    HTTPXClientInstrumentor().instrument()
    # Kubernetes probes call grpc.health.v1.Health every few seconds: no spans for those.
    not_health = negate(service_name("grpc.health.v1.Health"))
    GrpcAioInstrumentorServer(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    PymongoInstrumentor().instrument()


def instrument_app(app: Any) -> None:
    """Server spans for a FastAPI app while tracing is on; remembered, and instrumented later, while off."""
    if _provider is None:
        _uninstrumented.add(app)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    _uninstrumented.discard(app)
    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS)
    app.middleware_stack = None  # an app that already served a request rebuilds its stack with the spans


def add_span_processor(processor: SpanProcessor) -> None:
    """Tests: send spans to e.g. an in-memory exporter; starts tracing in this process when it is off."""
    if _provider is None:
        _start(processor)
    else:
        _provider.add_span_processor(processor)


def export_to(exporter: SpanExporter) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    add_span_processor(SimpleSpanProcessor(exporter))
