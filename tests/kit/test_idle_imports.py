"""What a service leaves unimported while it waits for requests (issue 15: idle memory, docs/performance.md).

Each of these was loaded by every service and is used by none of them unless asked for: the OpenTelemetry
SDK (and psutil, which it loads) only when spans are exported, httpx's command-line client (click, rich,
pygments, installed in the dev virtualenv) never, uvicorn's WebSocket protocol (wsproto) never. A fresh
interpreter builds a service's app as `python -m services.<name>` does and lists what got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scripts.dev import ROOT

NEVER = ("httpx._main", "rich", "pygments", "wsproto", "websockets")
ONLY_WHEN_EXPORTING = ("opentelemetry.sdk", "psutil")

PROBE = """
import json, sys
import uvicorn
from services.kit.serve import run_server
from services.payment.app import build_app
app = build_app()
settings = {}
uvicorn.run = lambda app, **given: settings.update(given)  # what run_server asks of uvicorn, not served
run_server(app, host="127.0.0.1", port=0)
uvicorn.Config(app, **settings).load()  # uvicorn's protocol classes, as serving would load them
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""


def imported(extra_env: dict[str, str]) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra_env)
    answer = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert answer.returncode == 0, answer.stderr
    return set(json.loads(answer.stdout.splitlines()[-1]))


def loaded(modules: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def test_a_service_without_tracing_imports_neither_the_sdk_nor_tools_it_never_runs() -> None:
    modules = imported({})
    assert "httpx" in modules and "uvicorn" in modules  # the probe did build and load a service
    assert [p for p in NEVER + ONLY_WHEN_EXPORTING if loaded(modules, p)] == []


def test_a_service_that_exports_spans_loads_the_sdk() -> None:
    modules = imported({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert loaded(modules, "opentelemetry.sdk")
    assert [p for p in NEVER if loaded(modules, p)] == []
