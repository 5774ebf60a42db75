"""Driving one endpoint with wrk (Debian's package): a Lua script per case, a JSON summary back.

wrk keeps every connection busy (a closed loop: the next request leaves as soon as the answer is read), so
`requests / duration` is the endpoint's capacity at that concurrency. Latencies are wrk's own histogram
(microseconds). Requests that cycle through several bodies or tokens (add to cart) are pre-formatted in the
script, so wrk's Lua does no work per request beyond picking the next one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.result import Result

MARK = "BENCH_WRK "

# The summary wrk's `done` hook writes: one JSON line after the mark.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    MARK, summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Request:
    """One HTTP request of a case (path relative to the target's base URL)."""

    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for these characters


def lua_script(requests: list[Request]) -> str:
    """A wrk script that sends `requests` in turn (one request: wrk's static request, cheapest)."""
    lines = [f"MARK = {_lua_string(MARK)}"]
    if len(requests) == 1:
        only = requests[0]
        lines.append(f"wrk.method = {_lua_string(only.method)}")
        lines.append(f"wrk.path = {_lua_string(only.path)}")
        if only.body:
            lines.append(f"wrk.body = {_lua_string(only.body)}")
        for name, value in only.headers:
            lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    else:
        lines.append("local formatted = {}")
        lines.append("init = function(args)")
        for req in requests:
            headers = ", ".join(f"[{_lua_string(n)}] = {_lua_string(v)}" for n, v in req.headers)
            body = _lua_string(req.body) if req.body else "nil"
            lines.append(
                f"  table.insert(formatted, wrk.format({_lua_string(req.method)}, {_lua_string(req.path)}, "
                f"{{{headers}}}, {body}))"
            )
        lines.append("end")
        lines.append("local next_index = 0")
        lines.append("request = function()")
        lines.append("  next_index = next_index % #formatted + 1")
        lines.append("  return formatted[next_index]")
        lines.append("end")
    return "\n".join(lines) + "\n" + _DONE


def parse(output: str) -> Result:
    """The summary line of a wrk run (raises ValueError when wrk printed none: it failed)."""
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return Result(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                errors=errors,
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
            )
    raise ValueError(f"wrk printed no summary:\n{output}")


def binary() -> str | None:
    return shutil.which("wrk")


def run(base_url: str, requests: list[Request], *, seconds: float, connections: int) -> Result:
    """Drive `base_url` with `connections` open connections for `seconds` (one wrk thread)."""
    wrk = binary()
    if wrk is None:
        raise RuntimeError(
            "wrk is not installed (Debian: apt-get install wrk; `make bench` installs it as root)"
        )
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "case.lua"
        script.write_text(lua_script(requests))
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)
