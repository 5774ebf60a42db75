"""The simulated cluster's egress proxy (scripts/sim/egress.py), offline: the API server's CONNECT to a
Service's ClusterIP reaches the local server that runs for it, anything else is refused with the reason and
never dialled. Real sockets on loopback; the cluster lookups are plain functions here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scripts.sim.egress import EgressProxy, ServicePort

ISTIOD = ServicePort("istio-system", "istiod", 443)


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _connect(socket_path: Path, target: str, payload: bytes = b"hello") -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        body = await reader.read()
        writer.close()
        return head + body
    writer.write(payload)
    await writer.drain()
    data = await reader.read(100)
    writer.close()
    return head + data


async def test_connect_to_a_service_reaches_its_local_server_and_nothing_else(tmp_path: Path) -> None:
    backend, port = await _echo_server()
    dialled: list[tuple[str, int]] = []

    def services(ip: str, service_port: int) -> ServicePort | None:
        dialled.append((ip, service_port))
        return ISTIOD if (ip, service_port) == ("10.96.0.10", 443) else None

    proxy = EgressProxy(str(tmp_path / "egress.sock"), services, {ISTIOD: ("127.0.0.1", port)}.get)
    await proxy.start()
    try:
        answer = await _connect(tmp_path / "egress.sock", "10.96.0.10:443")
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"echo:hello")

        refused = await _connect(tmp_path / "egress.sock", "10.244.0.7:8080")
        assert refused.startswith(b"HTTP/1.1 502")
        assert b"is no Service port of the simulated cluster" in refused

        loopback = await _connect(tmp_path / "egress.sock", f"127.0.0.1:{port}")
        assert loopback.endswith(b"echo:hello")
    finally:
        await proxy.close()
        backend.close()
    assert ("10.244.0.7", 8080) in dialled  # looked up, refused: never dialled (no route to it here)


async def test_a_service_without_a_local_server_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scripts.sim.egress.BACKEND_START_WAIT", 0.3)
    proxy = EgressProxy(str(tmp_path / "egress.sock"), lambda ip, p: ISTIOD, lambda sp: None)
    await proxy.start()
    try:
        refused = await _connect(tmp_path / "egress.sock", "10.96.0.10:443")
    finally:
        await proxy.close()
    assert refused.startswith(b"HTTP/1.1 502")
    assert b"istio-system/istiod:443 has no server here: its pods are simulated" in refused


async def test_anything_but_connect_is_refused(tmp_path: Path) -> None:
    proxy = EgressProxy(str(tmp_path / "egress.sock"), lambda ip, p: None, lambda sp: None)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "egress.sock"))
        writer.write(b"GET http://10.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
    finally:
        await proxy.close()
    assert answer.startswith(b"HTTP/1.1 405")
