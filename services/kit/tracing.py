"""OpenTelemetry tracing: on for every service, exported over OTLP only when OTEL_* says where.

The standard variables configure it: `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP), `OTEL_TRACES_SAMPLER` and
`OTEL_TRACES_SAMPLER_ARG` (the SDK reads them; the shop sets `parentbased_traceidratio`), `OTEL_SDK_DISABLED`.
Every server span carries the request id (`guid:x-request-id`, the tag Istio's Envoy proxies use, so one
search finds proxy and application spans) and, once a token is verified, the user id (`user.id`), never the
token.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("kit.tracing")
_provider: TracerProvider | None = None
_EXPORT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
REQUEST_ID_ATTRIBUTE = "guid:x-request-id"
USER_ID_ATTRIBUTE = "user.id"  # OpenTelemetry semantic conventions (enduser.id is deprecated)


def record_request_id(request_id: str) -> None:
    """Put the request id on the span of the request being handled (nothing when it is not sampled)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def record_user(user_id: str) -> None:
    """Put the signed-in user's id (a token's `sub`) on the span of the request being handled."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(USER_ID_ATTRIBUTE, user_id)


def export_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(os.environ.get(name) for name in _EXPORT_VARIABLES)


def setup_tracing(service: str, version: str) -> TracerProvider:
    """Install the tracer provider and the library instrumentations once per process."""
    global _provider
    if _provider is not None:
        return _provider
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", service), "service.version": version}
    )
    _provider = TracerProvider(resource=resource)
    if export_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing: exporting spans over OTLP")
    trace.set_tracer_provider(_provider)
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    _instrument_libraries()
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
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")


def add_span_processor(processor: SpanProcessor) -> None:
    """Tests: send spans to e.g. an in-memory exporter."""
    if _provider is None:
        raise RuntimeError("setup_tracing has not run")
    _provider.add_span_processor(processor)


def export_to(exporter: SpanExporter) -> None:
    add_span_processor(SimpleSpanProcessor(exporter))
