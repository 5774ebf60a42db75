"""gRPC server and client helpers: health service, routing headers as metadata, deadlines."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from services.kit.context import TRACE_CONTEXT_HEADERS, forwarded_headers

# Cookies and tokens stay out of gRPC metadata; the routing and identity headers go in, so a mesh can hash
# or route gRPC calls on e.g. `x-user-id`, and the trace context (replaced by the current span's while this
# process makes spans: services/kit/tracing.py).
_GRPC_FORWARDED = (
    "x-request-id",
    "x-user-id",
    "x-user-group",
    "canary",
    "user-agent",
    *TRACE_CONTEXT_HEADERS,
)


def create_server(host: str, port: int) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    """An asyncio gRPC server listening on host:port with `grpc.health.v1.Health` registered."""
    server = grpc.aio.server()
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    return server, health


async def set_serving(health: health_aio.HealthServicer, service: str, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await health.set(service, status)
    await health.set("", status)


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """The current request's routing headers as gRPC metadata."""
    headers = forwarded_headers()
    return tuple((name, headers[name]) for name in _GRPC_FORWARDED if name in headers)


def incoming_value(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None
