"""A fault-injecting HTTP proxy in front of one service, for the local chaos scenarios.

    python -m chaos.fault_proxy --port 18084 --upstream http://127.0.0.1:8084

It forwards every request to the upstream unchanged, except while a fault is set with
`PUT /_chaos/fault {"abort_percent": 50, "abort_status": 503, "delay_ms": 0}`: then it first waits
`delay_ms`, and answers `abort_percent` % of the requests itself with `abort_status` and a JSON error
(code `fault_injected`) without forwarding them. That is what a mesh's fault injection does (Istio's
VirtualService `fault` configures exactly this delay/abort pair in Envoy's fault filter), so the local
scenarios show the same effects without a cluster. `GET /_chaos/fault` answers the current setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Connection-level headers a proxy must not forward (RFC 9110 7.6.1), plus the length httpx recomputes.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
NO_FAULT = {"abort_percent": 0.0, "abort_status": 503, "delay_ms": 0}


def build_app(upstream: str, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The proxy app for `upstream` (`transport`: for tests, instead of the network)."""
    fault: dict[str, Any] = dict(NO_FAULT)
    client = httpx.AsyncClient(
        base_url=upstream, timeout=httpx.Timeout(60.0, connect=2.0), transport=transport
    )

    async def set_fault(request: Request) -> JSONResponse:
        if request.method == "PUT":
            body = await request.json()
            fault.update(NO_FAULT)
            fault.update({k: body[k] for k in NO_FAULT if k in body})
        return JSONResponse(fault)

    async def forward(request: Request) -> Response:
        if fault["delay_ms"]:
            await asyncio.sleep(fault["delay_ms"] / 1000)
        if fault["abort_percent"] and random.random() * 100 < fault["abort_percent"]:
            error = {"code": "fault_injected", "message": "fault injected by the chaos proxy"}
            return JSONResponse({"error": error}, status_code=int(fault["abort_status"]))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            answer = await client.request(
                request.method,
                request.url.path,
                params=request.query_params.multi_items(),
                content=await request.body(),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            error = {"code": "upstream_unavailable", "message": f"{type(exc).__name__} from the upstream"}
            return JSONResponse({"error": error}, status_code=503)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/_chaos/fault", set_fault, methods=["GET", "PUT"]),
            Route("/{path:path}", forward, methods=methods),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.upstream), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
