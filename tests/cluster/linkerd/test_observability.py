"""Tracing with Linkerd, live (docs/linkerd/observability.md): a checkout through the frontend's NodePort is
ONE trace in Jaeger holding the proxies' spans (`linkerd-proxy`, exported by every proxy to the meshed
collector, proxy.tracing of mesh/linkerd/install/tracing-values.yaml) and the applications' own spans. The
frontend starts the trace (Linkerd's proxies never do), so its root is the frontend's server span."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scripts.jaeger import parent_span_id, span_lines, span_services
from tests.cluster.helpers import jaeger_traces, traced_checkout

pytestmark = pytest.mark.cluster
JAEGER_QUERY = "http://jaeger.linkerd-jaeger:16686"
APPS = {"frontend", "order", "product", "payment", "shipping", "notification"}
PROXY = "linkerd-proxy"  # proxy.tracing.traceServiceName (the pods have no app.kubernetes.io/name label)


def test_a_checkout_is_one_trace_with_proxy_and_app_spans(shop_http: Any, curl_pod: Any) -> None:
    request_id = f"live-trace-{uuid.uuid4().hex}"
    traced_checkout(shop_http, request_id)
    reader = curl_pod(inject=False)

    traces = jaeger_traces(reader, JAEGER_QUERY, request_id, APPS | {PROXY})
    assert len(traces) == 1, f"the checkout is in {len(traces)} traces, not one"
    trace = traces[0]
    print("\n" + "\n".join(span_lines(trace)))
    services = span_services(trace)
    assert set(services) >= APPS, f"no application spans of {APPS - set(services)}"
    assert services.count(PROXY) >= 4, "outbound and inbound proxy spans of at least two hops"
    ids = {span["spanID"] for span in trace["spans"]}
    roots = [s for s in trace["spans"] if parent_span_id(s) not in ids]
    assert len(roots) == 1 and services[trace["spans"].index(roots[0])] == "frontend", (
        "the frontend starts it"
    )
