"""The in-pod helpers of the Istio live checks (tests/cluster/istio), exercised locally.

probe.py and the 503 server run inside cluster pods during `make verify`; here they run against local
sockets so a broken helper is caught without a cluster.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scripts.dev import free_port
from scripts.k8svalidate import REPO_ROOT
from tests.cluster.istio.helpers import BROKEN_SERVER

PROBE = REPO_ROOT / "tests" / "cluster" / "istio" / "probe.py"


class Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if "slow" in self.path:
            time.sleep(0.3)
        status = 503 if "fail" in self.path else 200
        body = json.dumps(
            {"ua": self.headers.get("user-agent-x", ""), "key": self.headers.get("key", "")}
        ).encode()
        self.send_response(status)
        self.send_header("x-served-by", "local/v9")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def probe(*args: str) -> object:
    src = Path(PROBE).read_text()
    out = subprocess.run([sys.executable, "-c", src, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_http_mode_reports_status_served_by_timing_and_headers() -> None:
    server, url = serve(Slow)
    try:
        results = probe(
            "http", f"{url}/slow", "6", "3", "--header", "user-agent-x: Mobile", "--header", "key: {uuid}"
        )
        assert isinstance(results, list) and len(results) == 6
        assert {r["status"] for r in results} == {200}
        assert {r["served_by"] for r in results} == {"local/v9"}
        assert min(r["seconds"] for r in results) >= 0.3
        bodies = [json.loads(r["body"]) for r in results]
        assert {b["ua"] for b in bodies} == {"Mobile"}
        assert len({b["key"] for b in bodies}) == 6, "a fresh {uuid} per request"
        (failed,) = probe("http", f"{url}/fail", "1", "1")
        assert failed["status"] == 503 and failed["served_by"] == "local/v9"
    finally:
        server.shutdown()
        server.server_close()
    (refused,) = probe("http", url, "1", "1")
    assert refused["status"] == 0 and refused["error"]


def test_mongo_mode_tells_an_answer_from_a_closed_connection() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got: list[bytes] = []

    def answer_once(reply: bytes) -> None:
        conn, _ = listener.accept()
        with conn:
            got.append(conn.recv(1024))
            conn.sendall(reply)

    t = threading.Thread(target=answer_once, args=(b"\x00" * 40,))
    t.start()
    assert probe("mongo", "127.0.0.1", str(port)) == {"reply": True, "error": ""}
    t.join()
    length, _, _, opcode = __import__("struct").unpack("<iiii", got[0][:16])
    assert (length, opcode) == (len(got[0]), 2013), "a well-formed OP_MSG"
    assert b"hello" in got[0] and b"admin" in got[0]
    t = threading.Thread(target=answer_once, args=(b"",))
    t.start()
    assert probe("mongo", "127.0.0.1", str(port))["reply"] is False  # type: ignore[index]
    t.join()
    listener.close()


def test_broken_server_answers_503_to_everything() -> None:
    port = free_port()
    src = BROKEN_SERVER.replace("PORT", str(port)).replace("0.0.0.0", "127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-c", src])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        results = probe(
            "http", f"http://127.0.0.1:{port}/users/me", "3", "1", "--method", "POST", "--body", "{}"
        )
        assert [(r["status"], r["served_by"]) for r in results] == [(503, "broken/v0")] * 3
    finally:
        proc.kill()
