"""Tracing with Istio, live (docs/istio/observability.md): a checkout through the ingress gateway is ONE
trace in Jaeger holding the proxies' spans (the gateway's and the sidecars', reported by Envoy) and the
applications' own spans (OpenTelemetry, exported by the services), joined by the W3C trace context the
sidecars and the services pass on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scripts.jaeger import parent_span_id, span_lines, span_services, span_tags
from tests.cluster.helpers import jaeger_traces, traced_checkout

pytestmark = pytest.mark.cluster
JAEGER_QUERY = "http://tracing.istio-system/jaeger"  # the addon's Service (port 80, UI under /jaeger)
APPS = {"frontend", "order", "product", "payment", "shipping", "notification"}
GATEWAY = "istio-ingressgateway.istio-system"  # Envoy reports <canonical service>.<namespace>


def test_a_checkout_through_the_gateway_is_one_trace_with_proxy_and_app_spans(
    shop_http: Any, curl_pod: Any
) -> None:
    request_id = f"live-trace-{uuid.uuid4().hex}"
    traced_checkout(shop_http, request_id)
    reader = curl_pod(inject=False)  # no sidecar: reads Jaeger (which has none) whatever labs are applied

    traces = jaeger_traces(reader, JAEGER_QUERY, request_id, APPS | {GATEWAY})
    assert len(traces) == 1, f"the checkout is in {len(traces)} traces, not one"
    trace = traces[0]
    print("\n" + "\n".join(span_lines(trace)))
    services = span_services(trace)
    assert set(services) >= APPS, f"no application spans of {APPS - set(services)}"
    assert GATEWAY in services, "the ingress gateway's span is missing: is the Telemetry resource applied?"
    proxy_spans = [s for s in trace["spans"] if span_tags(s).get("component") == "proxy"]
    assert len({services[trace["spans"].index(s)] for s in proxy_spans}) >= 3, (
        "gateway + at least two sidecars"
    )
    ids = {span["spanID"] for span in trace["spans"]}
    roots = [s for s in trace["spans"] if parent_span_id(s) not in ids]
    assert len(roots) == 1 and services[trace["spans"].index(roots[0])] == GATEWAY, (
        "the gateway starts the trace"
    )
