"""The locustfile is well formed and only calls endpoints the frontend serves (no load is generated here).

Locust monkey-patches the standard library with gevent when imported, so it is inspected in a child process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from services.frontend.app import build_app
from services.frontend.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"

PROBE = """
import json, sys
sys.path.insert(0, "loadtest")
import locustfile
from locust import HttpUser
from locust.env import Environment

users = [v for v in vars(locustfile).values()
         if isinstance(v, type) and issubclass(v, HttpUser) and v is not HttpUser]
env = Environment(user_classes=users)
env.stats.log_request("GET", "/api/products", 100, 10)
env.stats.log_error("POST", "/api/checkout", "503 unavailable")
print(json.dumps({
    "users": {u.__name__: {"weight": u.weight, "tasks": sorted({t.__name__ for t in u.tasks}),
                           "wait": u.wait_time is not None} for u in users},
    "summary": locustfile.summary_lines(env),
}))
"""


def _probe() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_locustfile_defines_weighted_shopper_journeys() -> None:
    probe = _probe()
    users = probe["users"]
    assert isinstance(users, dict)
    assert set(users) == {"Buyer", "WindowShopper"}
    journey = ["add_to_cart", "browse_catalog", "check_out", "log_in", "look_at_a_product"]
    assert users["Buyer"]["tasks"] == sorted([*journey, "read_notifications", "view_orders"])
    assert users["WindowShopper"]["tasks"] == ["browse_catalog", "look_at_a_product"]
    assert all(u["weight"] >= 1 and u["wait"] for u in users.values())
    summary = "\n".join(probe["summary"])  # type: ignore[arg-type]
    for figure in ("requests/s", "p50", "p95", "p99", "failures      1", "503 unavailable"):
        assert figure in summary


def test_locustfile_calls_only_frontend_api_routes_with_grouped_names() -> None:
    source = LOCUSTFILE.read_text()
    paths = {
        re.sub(r"\{[^}]+\}", "{id}", p) for p in re.findall(r'self\.client\.\w+\(\s*f?"(/api/[^"]*)"', source)
    }
    schema = build_app(Settings(session_secret="x")).openapi()
    routes = {re.sub(r"\{[^}]+\}", "{id}", path) for path in schema["paths"] if path.startswith("/api/")}
    assert paths and paths <= routes, paths - routes
    # URLs with ids are reported under one name each
    with_ids = re.findall(r'self\.client\.\w+\(\s*f"[^"]*\{[^"]*"[^)]*\)', source, flags=re.S)
    assert len(with_ids) >= 3
    for call in with_ids:
        assert "name=" in call, call
    assert "Idempotency-Key" in source


def test_make_load_target_runs_locust_headless_and_bounded() -> None:
    makefile = (ROOT / "mk" / "load.mk").read_text()
    for expected in (
        "HOST ?= http://127.0.0.1:8080",
        "USERS ?= 20",
        "SPAWN_RATE ?= 5",
        "RUN_TIME ?= 30s",
        "$(VENV)/bin/locust -f loadtest/locustfile.py --headless -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME)",
        "--host $(HOST) --only-summary",
        "load: $(STAMP) ## ",
    ):
        assert expected in makefile
