"""Prometheus metrics: request count and latency by route template and status."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """One registry per app, so several apps can live in one test process."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = ("service", "method", "route", "status")
        self.requests = Counter("http_requests", "HTTP requests handled", labels, registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.service = service
        # The labelled children, looked up once per (method, route, status): `labels()` validates and locks on
        # every call, a third of the kit's cost on a request that does no work (docs/performance.md).
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            labels = (self.service, method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    async def endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
