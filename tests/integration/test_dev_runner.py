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


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    services = with_free_ports([Service("payment", 0)])
    stack = Stack(services, stack_env(services, {"DELAY_MS": "1500"}), log_dir=tmp_path)
    stack.start(timeout=60)
    request.addfinalizer(stack.stop)
    url = stack.url("payment")
    outcome: dict[str, object] = {}

    def slow_request() -> None:
        try:
            outcome["status"] = httpx.post(f"{url}/payments", json={}, timeout=10).status_code
        except httpx.HTTPError as exc:
            outcome["error"] = repr(exc)

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.5)  # the request is now sleeping in DELAY_MS
    process = stack.processes["payment"]
    process.send_signal(signal.SIGTERM)
    worker.join(timeout=15)
    assert outcome == {"status": 401}, outcome  # answered (no token), not cut off
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
