"""The shoppers of loadtest/locustfile.py, plus a record of every request for the chaos report.

Locust's own statistics aggregate over the whole run; a chaos report needs each request's time to split
the run into before / during / after the faults. Every request is appended to CHAOS_REQUEST_LOG (CSV:
start and end as Unix seconds, method, name, HTTP status, ok, and for a successful checkout the order id,
which the audit checks against order's database).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from locust import events

from loadtest.locustfile import Buyer, WindowShopper

__all__ = ["Buyer", "WindowShopper"]
FIELDS = ["start", "end", "method", "name", "status", "ok", "order_id"]
_out = open(os.environ["CHAOS_REQUEST_LOG"], "w", newline="", buffering=1)  # noqa: SIM115 (open for the run)
_writer = csv.writer(_out)
_writer.writerow(FIELDS)


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    order_id = ""
    if name == "/api/checkout" and status == 201 and exception is None:
        try:
            order_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            order_id = ""
    start = start_time or 0.0
    _writer.writerow(
        [
            f"{start:.3f}",
            f"{start + response_time / 1000:.3f}",
            request_type,
            name,
            status,
            int(exception is None),
            order_id,
        ]
    )


@events.quitting.add_listener
def _close(**_: Any) -> None:
    _out.flush()
