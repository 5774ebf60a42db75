"""Helpers of the auth tests: settings without a key file (a key is generated) and the account journey."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from services.auth.settings import Settings

PASSWORD = "correct horse battery"
# The service clients auth knows in the tests (SERVICE_CLIENTS): order, and chaos with another secret.
OAUTH_SECRET = "0123456789abcdef0123456789abcdef-order"
OAUTH_CLIENTS = f"order={OAUTH_SECRET}, chaos={OAUTH_SECRET}x"
ROOT = Path(__file__).resolve().parents[3]
BURST = 32  # registrations and logins at once: more than the ~24 that killed the pod


def auth_settings(**overrides: Any) -> Settings:
    """auth's settings on the in-memory store with a generated signing key; `overrides` win."""
    values: dict[str, Any] = {"mongo_url": None, "jwt_private_key_file": None, "jwt_private_key": None}
    values.update(overrides)
    return Settings(**values)


def register(client: TestClient, email: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada", **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


HASH_BURST_PROBE = f"""
import asyncio, json, threading
from services.auth import passwords

def rss_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def hashing_threads():
    return sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())

async def burst():
    stored = await passwords.hash_password("warm-up password")  # the pool's first thread, the event loop
    before = rss_mib("VmRSS")
    hashes = await asyncio.gather(*(passwords.hash_password(f"password {{i}}") for i in range({BURST})))
    checks = await asyncio.gather(
        *(passwords.verify_password(h, f"password {{i}}") for i, h in enumerate(hashes))
    )
    unknown = await passwords.verify_password(None, "anything")
    return before, all(checks), unknown, await passwords.verify_password(stored, "wrong")

before, verified, unknown, wrong = asyncio.run(burst())
print(json.dumps({{"before": before, "after": rss_mib("VmRSS"), "peak": rss_mib("VmHWM"),
                  "verified": verified, "unknown": unknown, "wrong": wrong, "threads": hashing_threads()}}))
"""


def run_hash_burst() -> dict[str, object]:
    """BURST hashes and verifications at once in a fresh process: its memory and threads, as JSON."""
    run = subprocess.run(
        [sys.executable, "-c", HASH_BURST_PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result
