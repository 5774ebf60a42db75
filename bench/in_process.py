"""What the kit costs a request without the server and the socket: `GET /healthz` called straight into the
ASGI app object, the bare reference app beside product's kit app, interleaved rounds, microseconds per
request. `python -m bench.in_process [REQUESTS]` (default 20,000 a round, 3 rounds)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

from bench.reference_app import app as bare_app

Message = dict[str, Any]


async def call(app: Any, path: str = "/healthz") -> int:
    """One GET through the app; the status it answered."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def microseconds_per_request(app: Any, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await call(app)
    return (time.perf_counter() - started) / requests * 1e6


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    """{"bare": [us per request, a round each], "kit": [...]}; every app answered 200 first."""
    from services.product.app import build_app

    disabled = logging.root.manager.disable
    logging.disable(logging.INFO)  # the start-up lines would measure the terminal; restored below
    try:
        apps = {"bare": bare_app, "kit": build_app()}
        for name, app in apps.items():
            if (status := await call(app)) != 200:
                raise RuntimeError(f"{name} /healthz answered {status}")
            await microseconds_per_request(app, min(requests, 500))  # warm up
        figures: dict[str, list[float]] = {name: [] for name in apps}
        for round_ in range(rounds):
            for name in apps if round_ % 2 == 0 else reversed(apps):
                figures[name].append(await microseconds_per_request(apps[name], requests))
    finally:
        logging.disable(disabled)
    return figures


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    figures = asyncio.run(measure(requests, rounds=3))
    for name, values in figures.items():
        print(f"{name:5s} /healthz in-process: {' '.join(f'{v:.1f}' for v in values)} us per request")
    bare, kit = sorted(figures["bare"])[1], sorted(figures["kit"])[1]
    print(f"kit / bare (medians): {kit / bare:.2f} ({kit - bare:+.1f} us a request)")


if __name__ == "__main__":
    main()
