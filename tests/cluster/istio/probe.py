"""Runs INSIDE a test pod (python of the shop image, standard library only); prints JSON.

python3 -c SRC http URL COUNT CONCURRENCY [--method M] [--body JSON] [--header 'name: value']...
    one JSON object per request: status (0 = no HTTP answer), served_by, seconds, body, error;
    "{uuid}" in a header value becomes a fresh id per request (idempotency keys)
python3 -c SRC mongo HOST PORT
    whether MongoDB answered a `hello` (OP_MSG) on a raw TCP connection
"""

import argparse
import json
import socket
import struct
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


def one(url: str, method: str, body: bytes | None, headers: dict[str, str]) -> dict[str, object]:
    start = time.monotonic()
    headers = {k: v.replace("{uuid}", uuid.uuid4().hex) for k, v in headers.items()}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, got, text, error = resp.status, resp.headers, resp.read(300), ""
    except urllib.error.HTTPError as exc:
        status, got, text, error = exc.code, exc.headers, exc.read(300), ""
    except OSError as exc:
        status, got, text, error = 0, {}, b"", f"{type(exc).__name__}: {exc}"
    return {
        "status": status,
        "served_by": got.get("x-served-by", "") if got else "",
        "seconds": round(time.monotonic() - start, 3),
        "body": text.decode(errors="replace"),
        "error": error,
    }


def http(args: argparse.Namespace) -> None:
    headers = dict(h.split(": ", 1) for h in args.header)
    body = args.body.encode() if args.body is not None else None
    if body is not None:
        headers.setdefault("content-type", "application/json")
    with ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(lambda _: one(args.url, args.method, body, headers), range(args.count)))
    print(json.dumps(results))


def mongo(args: argparse.Namespace) -> None:
    # OP_MSG (opcode 2013), flags 0, one body section (kind 0) holding the BSON {hello: 1, $db: "admin"}.
    elements = b"\x10hello\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    doc = struct.pack("<i", len(elements) + 5) + elements + b"\x00"
    payload = struct.pack("<I", 0) + b"\x00" + doc
    message = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    try:
        with socket.create_connection((args.host, args.port), timeout=10) as sock:
            sock.sendall(message)
            reply = sock.recv(16)
        print(json.dumps({"reply": len(reply) == 16, "error": "" if reply else "connection closed"}))
    except OSError as exc:
        print(json.dumps({"reply": False, "error": f"{type(exc).__name__}: {exc}"}))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("http")
    h.add_argument("url")
    h.add_argument("count", type=int)
    h.add_argument("concurrency", type=int)
    h.add_argument("--method", default="GET")
    h.add_argument("--body")
    h.add_argument("--header", action="append", default=[])
    m = sub.add_parser("mongo")
    m.add_argument("host")
    m.add_argument("port", type=int)
    args = parser.parse_args()
    http(args) if args.mode == "http" else mongo(args)


if __name__ == "__main__":
    main()
