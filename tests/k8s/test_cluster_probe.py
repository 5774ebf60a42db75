"""The live tests skip only when the cluster really does not answer (tests/cluster/conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from tests.cluster.helpers import probe_cluster

ROOT = Path(__file__).resolve().parents[2]

VERSION = {
    "major": "1",
    "minor": "35",
    "gitVersion": "v1.35.0",
    "gitCommit": "0",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class FakeApiServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(VERSION).encode() if self.path.startswith("/version") else b"{}"
        self.send_response(200 if self.path.startswith("/version") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kind-shop", "cluster": {"server": server}}],
                "users": [{"name": "kind-shop", "user": {"token": "x"}}],
                "contexts": [{"name": "kind-shop", "context": {"cluster": "kind-shop", "user": "kind-shop"}}],
                "current-context": "kind-shop",
            }
        )
    )
    return str(path)


@pytest.fixture
def api_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_answering_cluster_is_not_skipped(tmp_path: Path, api_server: str) -> None:
    assert probe_cluster("kind-shop", kubeconfig(tmp_path, api_server)) is None


def test_missing_context_is_skipped_with_reason(tmp_path: Path, api_server: str) -> None:
    reason = probe_cluster("kind-other", kubeconfig(tmp_path, api_server))
    assert reason and "no kubeconfig context 'kind-other'" in reason and "make up" in reason


def test_silent_api_server_is_skipped_after_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        config = kubeconfig(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        reason = probe_cluster("kind-shop", config, timeout=1)
    assert reason and "not reachable within 1 s" in reason
    assert time.monotonic() - start < 5


def live_pytest(tmp_path: Path, kubeconfig_file: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`make verify`'s pytest run (--live) of some live checks against the given kubeconfig."""
    env = {**os.environ, "KUBECONFIG": kubeconfig_file}
    env.pop("KUBE_CONTEXT", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--live", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_live_run_without_a_cluster_fails_with_the_reason(tmp_path: Path) -> None:
    proc = live_pytest(tmp_path, str(tmp_path / "missing"), "tests/cluster/test_smoke.py")
    assert proc.returncode != 0
    assert "no cluster: run make up" in proc.stdout + proc.stderr


def test_live_run_in_which_every_check_skipped_fails(tmp_path: Path, api_server: str) -> None:
    """The API answers /version but has no Istio (404 everywhere else): every Istio check skips, so
    nothing was verified, and `make verify MESH=istio` must not pass."""
    proc = live_pytest(tmp_path, kubeconfig(tmp_path, api_server), "tests/cluster/istio/test_canary.py")
    assert proc.returncode != 0, proc.stdout
    assert "Istio is not installed in the cluster" in proc.stdout
    assert "no check passed, nothing was verified" in proc.stdout


def test_plain_pytest_still_skips_the_live_checks_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing")}
    env.pop("KUBE_CONTEXT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/cluster/test_smoke.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    assert "skipped" in proc.stdout and "no cluster: run make up" in proc.stdout
