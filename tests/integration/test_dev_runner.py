"""`make dev` and graceful shutdown, with real processes and signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from scripts.dev import Service, Stack, stack_env, with_free_ports

ROOT = Path(__file__).resolve().parents[2]
DEV_PORT = 8087  # notification's fixed dev port

pytestmark = pytest.mark.timeout(120)


def _port_busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


DevStarter = Callable[[], tuple[subprocess.Popen[str], list[str]]]


def _stop(dev: subprocess.Popen[str]) -> None:
    """Ctrl-C to the runner (it stops its services), then force whatever is left."""
    children = _children(dev.pid)
    if dev.poll() is None:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=20)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(timeout=10)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@pytest.fixture
def start_dev() -> Iterator[DevStarter]:
    """Starts `scripts/dev.py --only notification` and waits until it is up; at teardown, whatever the test
    asserted, stops it and its service (a leaked runner would hold notification's fixed port for every later
    run)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], list[str]]:
        if _port_busy(DEV_PORT):
            pytest.skip(f"port {DEV_PORT} is in use (is `make dev` running?)")
        dev = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "--only", "notification"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(dev)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(iter(dev.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while not any("the shop is up" in line for line in lines):
            assert dev.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "make dev did not come up:\n" + "".join(lines)
            time.sleep(0.2)
        return dev, lines

    yield start
    for dev in started:
        _stop(dev)


def test_make_dev_serves_on_the_documented_port_and_ctrl_c_stops_everything(start_dev: DevStarter) -> None:
    dev, lines = start_dev()
    children = _children(dev.pid)
    assert children, "the runner started no service process"
    assert httpx.get(f"http://127.0.0.1:{DEV_PORT}/readyz").json()["checks"] == {"mongodb": "ok"}
    assert any("IN-MEMORY" in line for line in lines), "the in-memory store must be announced loudly"
    dev.send_signal(signal.SIGINT)
    assert dev.wait(timeout=20) == 0
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
    assert not _port_busy(DEV_PORT)


def test_make_dev_reports_a_crashed_service_and_stops(start_dev: DevStarter) -> None:
    dev, lines = start_dev()
    (child,) = _children(dev.pid)
    os.kill(child, signal.SIGKILL)
    assert dev.wait(timeout=20) == 1
    time.sleep(0.3)  # let the output thread drain
    assert any("notification exited with code -9" in line for line in lines), "".join(lines)


def _tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(bytes sent but not acknowledged, bytes received but not read) of the IPv4 TCP socket from
    `local_port` to `remote_port`, as the kernel reports it in /proc/net/tcp; None while there is none."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (local_port, remote_port):
            tx_queue, rx_queue = queues.split(":")
            return int(tx_queue, 16), int(rx_queue, 16)
    return None


def _wait_until_read_by_the_server(client: socket.socket, server_port: int, timeout: float = 30) -> None:
    """Returns once the server process has read everything `client` sent (its socket's receive queue is
    empty and our bytes are acknowledged): the request is then in the server, not in the network."""
    client_port = client.getsockname()[1]
    deadline = time.monotonic() + timeout
    while True:
        sent = _tcp_queues(client_port, server_port)
        received = _tcp_queues(server_port, client_port)
        if sent is not None and received is not None and sent[0] == 0 and received[1] == 0:
            return
        assert time.monotonic() < deadline, f"the server did not read the request: {sent=} {received=}"
        time.sleep(0.02)


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    services = with_free_ports([Service("payment", 0)])
    stack = Stack(services, stack_env(services, {"DELAY_MS": "1500"}), log_dir=tmp_path)
    stack.start(timeout=60)
    request.addfinalizer(stack.stop)
    url = stack.url("payment")
    port = httpx.URL(url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        client.sendall(
            b"POST /payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        # Not a sleep: on a loaded machine the request may not have reached payment yet, and a server
        # that has not read a request is right to close the connection on SIGTERM.
        _wait_until_read_by_the_server(client, port)
        process = stack.processes["payment"]
        process.send_signal(signal.SIGTERM)  # payment is now sleeping DELAY_MS inside the request
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 "), answer  # answered (no token), not cut off
    # Uvicorn drains, runs the shutdown hooks, then re-raises the signal: exit "by SIGTERM", in time.
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "stopped payment" in (tmp_path / "payment.log").read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_a_service_whose_mongodb_is_not_up_yet_stays_alive_and_unready(tmp_path: Path) -> None:
    """Real PyMongo against a closed port: no crash loop, /healthz 200, /readyz 503 until MongoDB answers."""
    (service,) = with_free_ports([Service("notification", 0)])
    closed = with_free_ports([Service("mongodb", 0)])[0].port
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(service.port),
        "MONGO_URL": f"mongodb://127.0.0.1:{closed}/?serverSelectionTimeoutMS=300",
    }
    log = (tmp_path / "notification.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.notification"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{service.port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "notification.log").read_text()
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "notification.log").read_text()
                time.sleep(0.2)
        assert health.status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "starting"
        time.sleep(1.5)  # a retry or two later: still alive, still honest
        assert process.poll() is None
        assert "MongoDB not reachable yet" in (tmp_path / "notification.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)
