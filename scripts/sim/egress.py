"""The simulated cluster's route from the API server to Services: an HTTP CONNECT proxy on a Unix socket.

On kind, the API server reaches a webhook's Service (`istiod.istio-system:443`) through the node's network:
kube-proxy sends the Service's ClusterIP to a pod. The simulated cluster has no pod network (kwok's pods run
no containers and their IPs lead nowhere), so the API server is started with an egress selector
(`--egress-selector-config-file`, Kubernetes' own mechanism for API servers whose cluster network is
elsewhere, e.g. Konnectivity) that sends all its `cluster` traffic (admission webhooks, aggregated APIs,
kubelet calls) as `CONNECT <ClusterIP>:<port>` to this proxy. The proxy:

- maps the ClusterIP back to its Service (read from the API server) and the Service port to a process that
  runs the real server of that Service on 127.0.0.1 (scripts/sim/controlplane.py starts them: istiod);
- answers `502` with the reason for every other address. It never dials anything but 127.0.0.1, so nothing
  from the simulated cluster leaves this machine, and a webhook whose server is not run here fails exactly
  as it would on a cluster whose webhook pod is down (its failurePolicy decides).

Every CONNECT is one line in the log: the target, the Service, the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("sim.egress")

# How long a CONNECT waits for a backend that is starting (istiod needs a few seconds after its Deployment
# appears). Kubernetes' webhook calls time out after their timeoutSeconds (Istio: 10 s), so stay below.
BACKEND_START_WAIT = 8.0


@dataclass(frozen=True)
class ServicePort:
    """A port of a Service: namespace/name:port (the Service port, not the targetPort)."""

    namespace: str
    name: str
    port: int

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


# What the proxy needs from the cluster and the control-plane runner, as plain callables (tests pass dicts).
ServiceLookup = Callable[[str, int], ServicePort | None]  # (ClusterIP, port) -> Service port, or None
BackendLookup = Callable[[ServicePort], tuple[str, int] | None]  # Service port -> 127.0.0.1 address, or None


class EgressProxy:
    """HTTP CONNECT on a Unix socket: the API server's `cluster` egress (see the module docstring)."""

    def __init__(self, socket_path: str, services: ServiceLookup, backends: BackendLookup) -> None:
        self.socket_path = socket_path
        self.services = services
        self.backends = backends
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, path=self.socket_path)
        log.info("listening on %s", self.socket_path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            await _refuse(writer, 405, f"only CONNECT is supported, got {request_line!r}")
            return
        host, _, port_text = parts[1].rpartition(":")
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            await _refuse(writer, 400, f"bad CONNECT target {parts[1]!r}")
            return
        target, why = await self._resolve(host, port)
        if target is None:
            log.warning("CONNECT %s:%d refused: %s", host, port, why)
            await _refuse(writer, 502, why)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError as exc:
            why = f"{why}: {target[0]}:{target[1]} refused the connection ({exc.strerror or exc})"
            log.warning("CONNECT %s:%d failed: %s", host, port, why)
            await _refuse(writer, 502, why)
            return
        log.info("CONNECT %s:%d -> %s:%d (%s)", host, port, target[0], target[1], why)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _resolve(self, host: str, port: int) -> tuple[tuple[str, int] | None, str]:
        """(127.0.0.1 address to dial, or None; what it is or why not)."""
        if _is_loopback(host):
            return (host, port), "loopback"
        service = await asyncio.to_thread(self.services, host, port)
        if service is None:
            return (
                None,
                f"{host}:{port} is no Service port of the simulated cluster (nothing else is dialled)",
            )
        deadline = time.monotonic() + BACKEND_START_WAIT
        while (backend := self.backends(service)) is None or not await _accepts(backend):
            if time.monotonic() > deadline:
                return None, (
                    f"Service {service} has no server here: its pods are simulated (kwok runs no containers)"
                    if backend is None
                    else f"Service {service}: its local server {backend[0]}:{backend[1]} is not accepting yet"
                )
            await asyncio.sleep(0.25)
        return backend, f"Service {service}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _accepts(address: tuple[str, int]) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout=1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _refuse(writer: asyncio.StreamWriter, status: int, why: str) -> None:
    body = why.encode()
    reason = {400: "Bad Request", 405: "Method Not Allowed", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    for w in (writer, up_writer):
        w.close()
        with contextlib.suppress(OSError):
            await w.wait_closed()
