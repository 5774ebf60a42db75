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

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (self.service, method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    async def endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
