"""Stand-in for an external card processor (egress lab): POST /v1/charges over HTTPS on 8443.

Idempotent per Idempotency-Key, like real providers, so the mesh may retry POSTs. FAILURE_RATE
(0..1) answers that share of new charges with 503, so retries become visible. Plain HTTP on 8080
serves only /healthz (used by the probes and by the REGISTRY_ONLY check). Standard library only.
"""

import json
import os
import random
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAILURE_RATE = float(os.environ.get("FAILURE_RATE", "0"))
TLS_DIR = os.environ.get("TLS_DIR", "/tls")
HTTPS_PORT = int(os.environ.get("HTTPS_PORT", "8443"))
HTTP_PORT = int(os.environ.get("HTTP_PORT", "8080"))
CHARGES: dict[str, dict[str, str]] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-served-by", "payments-provider/v1")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"code": "not_found", "message": self.path}})

    def do_POST(self) -> None:
        if self.path != "/v1/charges" or self.server.server_port != HTTPS_PORT:
            self._send(404, {"error": {"code": "not_found", "message": self.path}})
            return
        key = self.headers.get("Idempotency-Key", "")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
            amount = int(body["amount_cents"])
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": {"code": "bad_request", "message": "amount_cents required"}})
            return
        with LOCK:
            if key and key in CHARGES:
                self._send(200, CHARGES[key])
                return
        if random.random() < FAILURE_RATE:
            self._send(503, {"error": {"code": "unavailable", "message": "provider busy, retry"}})
            return
        charge = {"id": f"ch_{uuid.uuid4().hex[:16]}", "status": "succeeded" if amount > 0 else "declined"}
        with LOCK:
            if key:
                CHARGES[key] = charge
        self._send(200, charge)


def main() -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(f"{TLS_DIR}/tls.crt", f"{TLS_DIR}/tls.key")
    https = ThreadingHTTPServer(("0.0.0.0", HTTPS_PORT), Handler)
    https.socket = tls.wrap_socket(https.socket, server_side=True)
    threading.Thread(target=https.serve_forever, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
