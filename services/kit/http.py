"""Outgoing HTTP: timeouts on every call, routing headers and trace context passed on."""

from __future__ import annotations

import logging
from typing import Any

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
        self._client = httpx.AsyncClient(timeout=timeout, limits=LIMITS, transport=transport)

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
