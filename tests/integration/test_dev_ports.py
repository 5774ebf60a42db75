"""The dev runner's ports (scripts/dev.py): what a stack of local services relies on to find each service.

A CI run once started auth and product on the same port: free_port handed out a port the kernel gave back
twice, product bound it, auth could not, and the stack's readiness check took product's answer for auth's.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from scripts import dev
from scripts.dev import Service, Stack, free_port


def test_free_port_never_hands_out_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the kernel gives back a port it gave before (planted here: 41000 twice, then 41001)."""
    kernel = iter([41000, 41000, 41001])

    class Socket:
        def __enter__(self) -> Socket:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(kernel)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(dev, "_HANDED_OUT", set())
    monkeypatch.setattr(dev.socket, "socket", Socket)
    assert [free_port(), free_port()] == [41000, 41001]


@pytest.fixture
def product_on_a_port() -> Iterator[int]:
    """A server answering /readyz 200 as product does (x-served-by: product/v1)."""

    class Product(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("x-served-by", "product/v1")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Product)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_a_service_whose_port_another_service_answers_is_not_ready(product_on_a_port: int) -> None:
    auth = Service("auth", product_on_a_port, None)
    stack = Stack([auth], env={})
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # auth, failing to bind
    try:
        stack.processes["auth"] = process
        with pytest.raises(RuntimeError, match=f"auth's port {product_on_a_port} is answered by product/v1"):
            stack.wait_ready(auth, timeout=10)
    finally:
        process.kill()
        process.wait()
