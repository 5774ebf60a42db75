"""Jaeger beside the shop's processes: `make dev TRACING=jaeger` and the trace tests.

`Jaeger` runs the pinned Jaeger v2 binary (`scripts/tools.sh jaeger`: the release download, or a build of its
Go module source) with `observability/jaeger/dev.yaml`: an OTLP receiver, in-memory storage, the query API and
UI, and remote sampling serving the lesson's strategies (`observability/jaeger/sampling-strategies.json`).
`make dev` uses Jaeger's default ports on 127.0.0.1 (`JaegerPorts()`); tests use `JaegerPorts.free()` so they
run beside a `make dev` and each other.

`tracing_env(service, jaeger)` is what a service process gets: where to export (OTLP over HTTP) and its
sampler, `parentbased_traceidratio` with the lesson's ratio for that service (`sampling_ratio`). `TraceQuery`
reads traces back through Jaeger's query API (`GET /api/traces`, the API Jaeger's UI uses), as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from scripts.dev import stop_process
from services.kit.tracing import REQUEST_ID_ATTRIBUTE

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "observability" / "jaeger" / "dev.yaml"
SAMPLING_STRATEGIES = ROOT / "observability" / "jaeger" / "sampling-strategies.json"


def _free_port() -> int:
    from scripts.dev import free_port

    return free_port()


@dataclass(frozen=True)
class JaegerPorts:
    """Where Jaeger listens on 127.0.0.1; the defaults are Jaeger's own (the UI and query API on 16686)."""

    query: int = 16686
    query_grpc: int = 16685
    otlp_grpc: int = 4317
    otlp_http: int = 4318
    sampling: int = 5778
    sampling_grpc: int = 5779
    health: int = 13133

    @classmethod
    def free(cls) -> JaegerPorts:
        """Every port free now (the kernel picks them): for tests beside a running `make dev`."""
        return cls(*(_free_port() for _ in fields(cls)))

    def env(self) -> dict[str, str]:
        """The JAEGER_*_PORT variables observability/jaeger/dev.yaml reads."""
        return {f"JAEGER_{field.name.upper()}_PORT": str(getattr(self, field.name)) for field in fields(self)}


def jaeger_binary() -> Path:
    """./bin/jaeger at the pinned version: from the tool cache, or downloaded or built the first time (with
    progress lines). Raises RuntimeError saying what is missing."""
    bin_dir = Path(os.environ.get("SHOP_BIN") or ROOT / "bin")
    installed = subprocess.run([str(ROOT / "scripts" / "tools.sh"), "jaeger"], cwd=ROOT, check=False)
    if installed.returncode != 0 or not (bin_dir / "jaeger").exists():
        raise RuntimeError(
            "Jaeger is not available (see the lines above); make dev without TRACING needs nothing"
        )
    return bin_dir / "jaeger"


class Jaeger:
    """A Jaeger v2 process on 127.0.0.1 (`ports`), traces kept in memory until it stops."""

    def __init__(self, binary: Path, ports: JaegerPorts | None = None, log_path: Path | None = None) -> None:
        self.binary = binary
        self.ports = ports or JaegerPorts()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ui_url(self) -> str:
        """Jaeger's UI and its query API (`/api/...`)."""
        return f"http://127.0.0.1:{self.ports.query}"

    @property
    def otlp_http_url(self) -> str:
        """Where services send spans: OTLP over HTTP (the exporter adds /v1/traces)."""
        return f"http://127.0.0.1:{self.ports.otlp_http}"

    def start(self, timeout: float = 60.0) -> None:
        """Start Jaeger and wait until its health check answers; RuntimeError (with the log's path) if not."""
        output = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, **self.ports.env(), "JAEGER_SAMPLING_FILE": str(SAMPLING_STRATEGIES)}
        self.process = subprocess.Popen(
            [str(self.binary), "--config", str(CONFIG)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        health = f"http://127.0.0.1:{self.ports.health}/status"
        while True:
            if (code := self.process.poll()) is not None:
                raise RuntimeError(f"Jaeger exited with code {code} while starting (log: {self.log_path})")
            try:
                with urllib.request.urlopen(health, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"Jaeger was not healthy on {health} after {timeout:.0f}s (log: {self.log_path})"
                )
            time.sleep(0.2)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, grace)


def sampling_strategies() -> dict[str, Any]:
    """observability/jaeger/sampling-strategies.json: the lesson's strategies mapped onto the shop."""
    data: dict[str, Any] = json.loads(SAMPLING_STRATEGIES.read_text())
    return data


def sampling_ratio(service: str) -> float:
    """The probability the lesson gives `service` (its own strategy, else the default strategy)."""
    strategies = sampling_strategies()
    for strategy in strategies["service_strategies"]:
        if strategy["service"] == service:
            return float(strategy["param"])
    return float(strategies["default_strategy"]["param"])


def tracing_env(service: str, jaeger: Jaeger) -> dict[str, str]:
    """The standard OpenTelemetry variables a service process gets when it exports to `jaeger`.

    The sampler is parent-based: a request that arrives with a trace context keeps its caller's decision, and
    only a trace this service starts itself (no `traceparent`) is sampled with the service's own ratio.
    """
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_http_url,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{sampling_ratio(service):g}",
        # Export every second instead of every five, so a trace shows up in Jaeger while you look.
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }


class TraceQuery:
    """Jaeger's query API (the JSON the UI reads): traces by service and span attributes."""

    def __init__(self, ui_url: str, timeout: float = 5.0) -> None:
        self.base = ui_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            return json.loads(response.read())

    def services(self) -> list[str]:
        """The service names Jaeger has spans of."""
        return sorted(self._get("/api/services", {})["data"] or [])

    def traces(
        self, service: str, tags: dict[str, str] | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Traces with a span of `service` whose attributes include `tags` (Jaeger's `tags` search)."""
        params = {"service": service, "limit": str(limit), "lookback": "1h"}
        if tags:
            params["tags"] = json.dumps(tags)
        data: list[dict[str, Any]] = self._get("/api/traces", params)["data"] or []
        return data

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace by its id (32 hex digits), None when Jaeger holds no span of it."""
        try:
            data: list[dict[str, Any]] = self._get(f"/api/traces/{trace_id}", {})["data"] or []
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return data[0] if data else None

    def trace_of_request(self, request_id: str, service: str = "frontend") -> list[dict[str, Any]]:
        """The traces holding the spans of one request (its x-request-id), searched from `service`."""
        return self.traces(service, {REQUEST_ID_ATTRIBUTE: request_id})

    def wait_for_trace(
        self, request_id: str, services: set[str], timeout: float = 60.0, service: str = "frontend"
    ) -> list[dict[str, Any]]:
        """Poll until the request's traces have spans of every one of `services` and every span's parent
        (spans arrive in batches, one service after another, and a server span ends, so is exported, after
        the spans of the calls it made); returns the last answer, complete or not, when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while True:
            try:
                found = self.trace_of_request(request_id, service)
            except (urllib.error.URLError, OSError):
                found = []
            if (
                found
                and services <= {name for trace in found for name in span_services(trace)}
                and all(_has_every_parent(trace) for trace in found)
            ):
                return found
            if time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def _has_every_parent(trace: dict[str, Any]) -> bool:
    ids = {span["spanID"] for span in trace["spans"]}
    return all(parent in ids for span in trace["spans"] if (parent := parent_span_id(span)) is not None)


def span_services(trace: dict[str, Any]) -> list[str]:
    """The service name of every span of a trace in the query API's JSON (`processes` holds the names)."""
    processes = trace["processes"]
    return [processes[span["processID"]]["serviceName"] for span in trace["spans"]]


def span_tags(span: dict[str, Any]) -> dict[str, Any]:
    """A span's attributes as a dict (the query API lists them as key/type/value records)."""
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def parent_span_id(span: dict[str, Any]) -> str | None:
    """The span's parent (its CHILD_OF reference), None for the root."""
    for reference in span.get("references", []):
        if reference.get("refType") == "CHILD_OF":
            return str(reference["spanID"])
    return None


def span_lines(trace: dict[str, Any]) -> list[str]:
    """The trace as an indented tree, one span a line: `service  operation  duration` (for test output)."""
    spans = {span["spanID"]: span for span in trace["spans"]}
    processes = trace["processes"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        parent = parent_span_id(span)
        children.setdefault(parent if parent in spans else None, []).append(span)
    lines: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        service = processes[span["processID"]]["serviceName"]
        lines.append(f"{'  ' * depth}{service:<13} {span['operationName']}  {span['duration'] / 1000:.1f} ms")
        for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"]):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s["startTime"]):
        walk(root, 0)
    return lines
