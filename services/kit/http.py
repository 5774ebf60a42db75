"""Outgoing HTTP: timeouts on every call, routing headers and trace context passed on."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpcore
import httpx
from opentelemetry import propagate

from services.kit import tracing
from services.kit.context import TRACE_CONTEXT_HEADERS, forwarded_headers
from services.kit.errors import ApiError
from services.kit.settings import ServiceSettings

log = logging.getLogger("kit.http")
# Every connection kept open for reuse: httpx keeps 20 idle ones in all, across every neighbour, so a service
# calling several neighbours for 20 concurrent shoppers opened and closed connections on every request. Idle
# ones close after 4 s, before uvicorn's 5 s keep-alive closes them on the other end (no reuse of a connection
# being closed).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0)
SWEEP_SECONDS = 0.5  # how often the pool looks at every kept connection (see _Pool)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, without its per-request cost that grows with the connections kept.

    httpcore assigns a request to a connection by first looking at every connection in the pool: whether it
    expired, and for each idle one whether the server closed it (a `poll` system call through anyio's
    attribute lookup, which builds a dict of every socket attribute each time), then counting the idle
    ones again for each idle one. It does so when a request arrives and again when its answer is read. With
    the 20-40 connections a frontend keeps to product for 20 shoppers, that was a quarter of the
    frontend's CPU (py-spy, `make bench-profile CASE=catalog-page`). Here a request takes the first
    connection that can serve it, checked (expired, closed by the server) before use exactly as httpcore
    checks it; the sweep of the whole pool (closed, expired and surplus idle connections) runs at most
    every SWEEP_SECONDS.
    """

    _next_sweep = 0.0

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            return super()._assign_requests_to_connections()
        closing: list[httpcore.AsyncConnectionInterface] = []
        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            connection = None
            for candidate in list(self._connections):
                if not (candidate.can_handle_request(origin) and candidate.is_available()):
                    continue
                if candidate.has_expired():  # keep-alive ran out, or the server closed it
                    self._connections.remove(candidate)
                    closing.append(candidate)
                    continue
                connection = candidate
                break
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    idle = next((c for c in self._connections if c.is_idle()), None)
                    if idle is None:
                        continue  # stays queued, as in httpcore, until a connection frees up
                    self._connections.remove(idle)
                    closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


def _transport() -> httpx.AsyncHTTPTransport:
    """httpx's transport (so httpx's tracing instrumentation still wraps it) on the pool above."""
    kit_transport = httpx.AsyncHTTPTransport(limits=LIMITS)
    kit_transport._pool.__class__ = _Pool  # same state and settings, only the assignment differs
    return kit_transport


class ServiceClient:
    """An httpx client for calling the other services.

    Every call carries the routing headers and the W3C trace context of the request being handled (see
    `context.FORWARDED_HEADERS`); while this process makes spans, the trace context is the current span's
    (services/kit/tracing.py). Transport failures become a 503/504 `ApiError` naming the dependency, so a
    handler never turns a dead neighbour into a 500.
    """

    def __init__(self, settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        timeout = httpx.Timeout(
            connect=settings.http_connect_timeout,
            read=settings.http_read_timeout,
            write=settings.http_read_timeout,
            pool=settings.http_connect_timeout,
        )
        self._client = httpx.AsyncClient(timeout=timeout, limits=LIMITS, transport=transport or _transport())

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        forward: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Call another service. `forward=False` for calls leaving the shop (egress): only the request id
        and trace context go out, never the shopper's token or cookies."""
        merged = forwarded_headers() if forward else _request_id_and_trace_context()
        merged.update(headers or {})
        if tracing.enabled():
            propagate.inject(merged)  # the current span's traceparent, whatever transport is in use
        try:
            return await self._client.request(method, url, headers=merged, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("timeout calling %s %s", method, url)
            raise ApiError(504, "dependency_timeout", f"{_host(url)} did not answer in time") from exc
        except httpx.TransportError as exc:
            log.warning("cannot reach %s %s: %s", method, url, exc)
            raise ApiError(503, "dependency_unavailable", f"{_host(url)} is unavailable") from exc

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()


def _request_id_and_trace_context() -> dict[str, str]:
    forwarded = forwarded_headers()
    return {name: forwarded[name] for name in ("x-request-id", *TRACE_CONTEXT_HEADERS) if name in forwarded}


def _host(url: str) -> str:
    return httpx.URL(url).host or url
