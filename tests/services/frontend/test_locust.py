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
env.stats.log_request("GET", "/api/products", 336, 10)  # Locust files it in its 340 ms bucket
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
    assert "latency ms    p50 336  p95 336  p99 336  max 336" in summary  # never above the slowest


# A Buyer against a stand-in frontend on 127.0.0.1 whose /api/register and /api/login answer what the test
# says: which calls does the shopper make while it cannot sign in, and once it can?
SIGN_IN_PROBE = """
import json, sys, threading
sys.path.insert(0, "loadtest")
import locustfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from locust.env import Environment

answers = {"/api/register": 503, "/api/login": 503}
seen = []

class Frontend(BaseHTTPRequestHandler):
    def answer(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?")[0]
        seen.append([self.command, path, "authorization" in {k.lower() for k in self.headers}])
        status, body = 200, {}
        if path in answers:
            status = answers[path]
            body = {"access_token": "token"} if path == "/api/login" and status == 200 else {}
        elif path == "/api/products":
            body = {"items": [{"id": "p1", "stock": 50}]}
        elif path == "/api/cart/items":
            status = 201
        elif path == "/api/checkout":
            status, body = 201, {"id": "o1"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Frontend)
threading.Thread(target=server.serve_forever, daemon=True).start()
locustfile.Buyer.host = f"http://127.0.0.1:{server.server_port}"
buyer = locustfile.Buyer(Environment(user_classes=[locustfile.Buyer]))
phases = {}
buyer.on_start()
for phase, change in (("shop down", {}), ("registered, login refused", {"/api/register": 201}),
                      ("signed in", {"/api/login": 200})):
    answers.update(change)
    for shopping in (buyer.add_to_cart, buyer.check_out, buyer.view_orders, buyer.read_notifications):
        shopping()
    phases[phase] = list(seen)
    seen.clear()
server.shutdown()
print(json.dumps(phases))
"""


def test_a_buyer_who_cannot_sign_in_calls_nothing_that_needs_a_login_until_it_can() -> None:
    command = [sys.executable, "-c", SIGN_IN_PROBE]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    signed_in_only = {"/api/cart", "/api/cart/items", "/api/checkout", "/api/orders", "/api/notifications"}
    # Shop down: it asks to register before each task (and at start), never logs in with no account.
    assert {path for _, path, _ in phases["shop down"]} == {"/api/register"}
    # Registered, login refused: one registration, then only login attempts; nothing needing a login.
    down = [path for _, path, _ in phases["registered, login refused"]]
    assert down.count("/api/register") == 1 and set(down) == {"/api/register", "/api/login"}, down
    # Signed in: the cart, the checkout, orders and notifications, every one with the token.
    calls = phases["signed in"]
    assert signed_in_only <= {path for _, path, _ in calls}
    assert all(token for _, path, token in calls if path in signed_in_only)
    assert [path for _, path, _ in calls].count("/api/login") == 1  # logged in once, then kept the token


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
