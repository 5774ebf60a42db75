"""The kit's outgoing connection pool (services/kit/http.py `_Pool`): what a call costs must not grow with
the connections kept, and a kept connection is still checked before it is reused.

httpcore's own pool looked at every kept connection (a `poll` system call for each idle one) twice per
request: with the 20-40 connections the frontend keeps to product that was a quarter of its CPU
(docs/performance.md). These tests run the kit's ServiceClient against a small HTTP/1.1 server on a free
port that counts connections and can close them behind the client's back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpcore
import httpx
import pytest

from services.kit import ServiceSettings, http
from services.kit.http import ServiceClient

BODY = b'{"items": []}'


class Server:
    """Answers every request with a small JSON body; keeps the connection open unless `close_after` is set
    (then it closes the socket right after the answer, without saying `Connection: close`, as a server
    whose keep-alive ran out does)."""

    def __init__(self) -> None:
        self.connections = 0
        self.close_after = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(0.001)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    running = Server()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def expiry_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts httpcore's per-connection check (expired, or closed by the server)."""
    calls = [0]
    original: Callable[[Any], bool] = httpcore.AsyncHTTPConnection.has_expired

    def counted(self: Any) -> bool:
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(httpcore.AsyncHTTPConnection, "has_expired", counted)
    return calls


def client(transport: httpx.AsyncBaseTransport | None = None) -> ServiceClient:
    return ServiceClient(ServiceSettings(service_name="caller"), transport=transport)


async def _keep_connections(kit: ServiceClient, url: str, count: int) -> None:
    answers = await asyncio.gather(*(kit.get(url) for _ in range(count)))
    assert all(answer.status_code == 200 for answer in answers)


async def test_concurrent_calls_reuse_the_kept_connections(server: Server) -> None:
    kit = client()
    url = f"http://127.0.0.1:{server.port}/products"
    for _ in range(10):
        await _keep_connections(kit, url, 20)
    await kit.aclose()
    assert server.connections <= 20, f"{server.connections} connections for 20 concurrent calls"


async def test_a_call_checks_one_connection_however_many_are_kept(
    server: Server, expiry_checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "SWEEP_SECONDS", 3600.0)
    kit = client()
    url = f"http://127.0.0.1:{server.port}/products"
    await _keep_connections(kit, url, 30)  # 30 kept connections (the first call swept the pool once)
    expiry_checks[0] = 0
    for _ in range(20):
        assert (await kit.get(url)).status_code == 200
    await kit.aclose()
    assert expiry_checks[0] == 20, f"{expiry_checks[0]} connection checks for 20 calls"


async def test_httpcores_own_pool_checks_every_kept_connection(
    server: Server, expiry_checks: list[int]
) -> None:
    """The planted case: the same calls on httpx's transport as it comes."""
    kit = client(httpx.AsyncHTTPTransport(limits=http.LIMITS))
    url = f"http://127.0.0.1:{server.port}/products"
    await _keep_connections(kit, url, 30)
    expiry_checks[0] = 0
    for _ in range(20):
        assert (await kit.get(url)).status_code == 200
    await kit.aclose()
    assert expiry_checks[0] >= 20 * 30


async def test_a_connection_the_server_closed_is_not_reused(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "SWEEP_SECONDS", 3600.0)  # only the check before reuse can catch it
    server.close_after = True
    kit = client()
    url = f"http://127.0.0.1:{server.port}/products"
    for _ in range(5):
        assert (await kit.get(url)).status_code == 200
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection sits in the pool
    await kit.aclose()
    assert server.connections == 5


async def test_the_transport_is_httpxs_so_tracing_wraps_it() -> None:
    """HTTPXClientInstrumentor wraps `httpx.AsyncHTTPTransport.handle_async_request` (client spans when
    traces are exported): the kit's transport must stay one."""
    kit = client()
    transport = kit._client._transport
    assert type(transport) is httpx.AsyncHTTPTransport
    assert isinstance(transport._pool, http._Pool)
    await kit.aclose()
