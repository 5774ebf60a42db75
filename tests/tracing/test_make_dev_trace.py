"""One purchase, one trace: what `make dev TRACING=jaeger` shows in Jaeger, read back through its query API.

A shopper registers, logs in and buys through the frontend's JSON API; the checkout request carries our own
`x-request-id`. Jaeger must then hold exactly one trace with that request id, whose spans cover the frontend,
order, product (the REST price lookup and the gRPC Inventory reservation), payment, shipping, notification and
MongoDB operations, every span's parent in the same trace, the request id and the user id as attributes, and
no token anywhere. The span tree is printed (`-s` in `make trace-test`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from scripts.jaeger import parent_span_id, span_lines, span_services, span_tags
from services.kit.tracing import REQUEST_ID_ATTRIBUTE, USER_ID_ATTRIBUTE
from tests.tracing.helpers import TracedShop

pytestmark = pytest.mark.timeout(300)
PASSWORD = "pa55word!trace"
ADDRESS = {
    "name": "Tia",
    "street": "Keizersgracht 1",
    "city": "Amsterdam",
    "postal_code": "1015 CJ",
    "country": "NL",
}
CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
TRACED_SERVICES = {"frontend", "order", "product", "payment", "shipping", "notification"}


def _buy(shop: TracedShop, request_id: str) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Register, log in, fill the cart and check out (the checkout with `request_id`): the order, the
    user's id and the tokens the shopper held (none of which may appear in a span)."""
    with httpx.Client(base_url=shop.frontend, timeout=30) as client:
        email = f"trace-{uuid.uuid4().hex[:8]}@example.com"
        registered = client.post("/api/register", json={"email": email, "password": PASSWORD, "name": "Tia"})
        assert registered.status_code == 201, registered.text
        login = client.post("/api/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        tokens = {k: v for k, v in login.json().items() if k.endswith("_token")}
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        product = next(p for p in client.get("/api/products").json()["items"] if p["stock"] >= 1)
        added = client.post(
            "/api/cart/items", json={"product_id": product["id"], "quantity": 1}, headers=auth
        )
        assert added.status_code in (200, 201), added.text
        checkout = client.post(
            "/api/checkout",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex, "x-request-id": request_id},
            json={"shipping_address": ADDRESS, "card": CARD},
        )
        assert checkout.status_code == 201, checkout.text
        assert checkout.headers["x-request-id"] == request_id
        return checkout.json(), registered.json()["id"], tokens


def test_a_checkout_is_one_trace_across_the_services_and_mongodb(traced_shop: TracedShop) -> None:
    request_id = f"trace-test-{uuid.uuid4().hex}"
    order, user_id, tokens = _buy(traced_shop, request_id)

    traces = traced_shop.query.wait_for_trace(request_id, TRACED_SERVICES)
    assert len(traces) == 1, f"the checkout's spans are in {len(traces)} traces, not one"
    trace = traces[0]
    print(
        f"\ntrace {trace['traceID']}, checkout {request_id}, order {order['id']}: {len(trace['spans'])} spans"
    )
    print("\n".join(span_lines(trace)))

    services = span_services(trace)
    assert set(services) >= TRACED_SERVICES, f"no spans of {TRACED_SERVICES - set(services)}"
    spans = trace["spans"]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span, service in zip(spans, services, strict=True):
        by_service.setdefault(service, []).append(span)

    # One root (the frontend's POST /api/checkout), every other span's parent in this trace.
    ids = {span["spanID"] for span in spans}
    roots = [span for span in spans if parent_span_id(span) is None]
    assert len(roots) == 1, [span["operationName"] for span in roots]
    assert by_service["frontend"][0]["traceID"] == trace["traceID"]
    assert roots[0] in by_service["frontend"] and "/api/checkout" in roots[0]["operationName"]
    orphans = [
        span["operationName"] for span in spans if (parent := parent_span_id(span)) and parent not in ids
    ]
    assert orphans == [], f"spans whose parent is not in the trace: {orphans}"

    # product: the REST price lookup and the gRPC reservation, each a server span under a call from order.
    product_operations = {span["operationName"] for span in by_service["product"]}
    assert any(op.startswith("GET /products/") for op in product_operations), product_operations
    assert "/shop.inventory.v1.Inventory/Reserve" in product_operations, product_operations
    operations = {span["spanID"]: (service, span) for span, service in zip(spans, services, strict=True)}
    for span in by_service["product"]:
        if span_tags(span).get("span.kind") != "server":
            continue  # the ASGI instrumentation's own receive/send spans sit under product's server span
        caller_service, _ = operations[parent_span_id(span) or ""]
        assert caller_service == "order", (span["operationName"], caller_service)

    # MongoDB: PyMongo's spans (db.system=mongodb) in order's and payment's work at least.
    database_spans = [
        (service, span)
        for span, service in zip(spans, services, strict=True)
        if span_tags(span).get("db.system") == "mongodb"
    ]
    assert {"order", "payment"} <= {service for service, _ in database_spans}, database_spans

    # The request id on every service's server span; the user id where a token was verified; no token.
    for service in TRACED_SERVICES:
        tagged = [
            span for span in by_service[service] if span_tags(span).get(REQUEST_ID_ATTRIBUTE) == request_id
        ]
        assert tagged, f"no {service} span carries {REQUEST_ID_ATTRIBUTE}={request_id}"
    for service in ("frontend", "order", "payment", "shipping", "notification"):
        users = {span_tags(span).get(USER_ID_ATTRIBUTE) for span in by_service[service]} - {None}
        assert users == {user_id}, (service, users)
    everything = repr(trace)
    for name, token in tokens.items():
        assert token not in everything, f"the shopper's {name} is in the trace"
    assert "Bearer " not in everything


# W3C trace context (traceparent: version-traceid-parentid-flags). The SDK's TraceIdRatioBased sampler keeps
# a trace whose id's lower 64 bits are below ratio * 2**64: an id ending in 16 "f" is dropped by any ratio
# below 1, one ending in 16 "0" kept by any ratio above 0, so what product's own ratio would decide is known.
def _trace_id(lower_64_bits: str) -> str:
    return uuid.uuid4().hex[:16] + lower_64_bits * 16


def _traceparent(trace_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-{'01' if sampled else '00'}"


def test_the_root_decides_a_services_own_ratio_only_starts_traces(traced_shop: TracedShop) -> None:
    """Parent-based sampling, shown on product (ratio 0.8, the lesson's "backend"): a request whose trace
    context says "sampled" is traced even with an id product's 0.8 would drop, and one whose context says
    "not sampled" leaves no span anywhere even with an id any ratio would keep. The decision made once, by
    whoever started the trace, travels with the request."""
    product = traced_shop.stack.url("product")
    unsampled_id, sampled_id = _trace_id("0"), _trace_id("f")
    for trace_id, sampled in ((unsampled_id, False), (sampled_id, True)):
        headers = {"traceparent": _traceparent(trace_id, sampled)}
        answer = httpx.get(f"{product}/products", headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text

    deadline = time.monotonic() + 60
    while (found := traced_shop.query.trace(sampled_id)) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found is not None, "product dropped a trace its caller sampled (its own 0.8 would have)"
    assert set(span_services(found)) == {"product"}
    print(f"\nsampled by the caller, trace {sampled_id} (product's own 0.8 would drop this id):")
    print("\n".join(span_lines(found)))

    # The unsampled request was sent first and spans leave in order, a batch a second: wait two more batches.
    time.sleep(2.5)
    assert traced_shop.query.trace(unsampled_id) is None, "product traced a request its caller did not sample"
    print(f"not sampled by the caller, trace {unsampled_id} (any ratio keeps this id): no span in Jaeger")
