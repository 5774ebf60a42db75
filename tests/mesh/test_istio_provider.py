"""The egress lab's stand-in payment provider (mesh/istio/labs/egress/provider.py), run locally.

It speaks the contract the payment service expects (docs: PROVIDER_URL): POST /v1/charges over
HTTPS, JSON in and out, idempotent per Idempotency-Key, 503 for FAILURE_RATE of new charges.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from scripts.dev import free_port
from scripts.k8svalidate import REPO_ROOT

PROVIDER = REPO_ROOT / "mesh" / "istio" / "labs" / "egress" / "provider.py"
CHARGE = {"amount_cents": 1999, "currency": "EUR", "reference": "order-1"}


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Callable[..., tuple[str, str]]]:
    """start(failure_rate) -> (https base URL, http base URL) of a running provider."""
    procs: list[subprocess.Popen[bytes]] = []
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    cmd += ["-subj", "/CN=api.payments.example", "-keyout", str(key), "-out", str(crt)]
    subprocess.run(cmd, check=True, capture_output=True)

    def start(failure_rate: str = "0") -> tuple[str, str]:
        https, http = free_port(), free_port()
        env = {**os.environ, "TLS_DIR": str(tmp_path), "FAILURE_RATE": failure_rate}
        env.update(HTTPS_PORT=str(https), HTTP_PORT=str(http))
        procs.append(subprocess.Popen([sys.executable, "-B", str(PROVIDER)], env=env))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", http), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", https), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}"

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_charges_over_https_are_idempotent(provider: Callable[..., tuple[str, str]]) -> None:
    https, http = provider()
    with httpx.Client(verify=False, timeout=5) as c:
        first = c.post(f"{https}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 200 and first.headers["x-served-by"] == "payments-provider/v1"
        body = first.json()
        assert body["status"] == "succeeded" and body["id"].startswith("ch_")
        again = c.post(f"{https}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k1"})
        assert again.json() == body
        other = c.post(f"{https}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k2"})
        assert other.json()["id"] != body["id"]
        bad = c.post(f"{https}/v1/charges", json={"currency": "EUR"}, headers={"Idempotency-Key": "k3"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
        assert c.get(f"{http}/healthz").json() == {"status": "ok"}
        assert c.post(f"{http}/v1/charges", json=CHARGE).status_code == 404, "charges only over TLS"


def test_failure_rate_answers_503_for_new_charges(provider: Callable[..., tuple[str, str]]) -> None:
    https, _ = provider("1")
    with httpx.Client(verify=False, timeout=5) as c:
        r = c.post(f"{https}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
