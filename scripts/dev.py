"""`make dev`: run the whole shop on 127.0.0.1 as local processes, without Docker.

Every service runs as `python -m services.<name>`, each with its own database, on one of three stores:
the in-memory substitute (the default, nothing to install), FerretDB (`--store ferretdb`: a real MongoDB
wire-protocol server on SQLite, built from its pinned source by `scripts/tools.sh ferretdb`, data kept in
.data/ferretdb), or the MongoDB at MONGO_URL. Ctrl-C stops all of them; if one crashes, its exit is
reported and the others are stopped too, so nothing fails silently.

`--tracing jaeger` (`make dev TRACING=jaeger`) starts Jaeger beside them (scripts/jaeger.py) and every service
exports its spans to it over OTLP; the UI is then at http://127.0.0.1:16686.

The same functions start the stack for the process-level tests (tests/conftest.py) and the chaos runs
(chaos/), which also kill and restart single services and the database (`Stack.kill`, `Stack.restart`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services import topology

if TYPE_CHECKING:
    from scripts.jaeger import Jaeger

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    grpc_port: int | None = None


# Names and dev ports from services/topology.env (the one list of services), in its order: frontend first.
SERVICES = tuple(
    Service(name, topology.dev_port(name), topology.GRPC_PORT if name == topology.GRPC_SERVICE else None)
    for name in topology.SERVICES
)


def available() -> list[Service]:
    """The services whose package exists in this checkout."""
    return [s for s in SERVICES if (ROOT / "services" / s.name / "__main__.py").exists()]


_HANDED_OUT: set[int] = set()  # every port free_port gave this process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the kernel picks it), never one this process was given
    before. The one helper for this: the tests and the dev runner use it so they never collide with `make
    dev`'s fixed ports or each other. (The kernel may hand out a port again once its socket is closed: a
    stack whose services took their ports one after the other once gave auth and product the same one.)
    Raises RuntimeError when 100 tries in a row give back ports already handed out."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("the kernel kept giving back ports this process already handed out")


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it still runs after `grace` seconds; returns once it
    has exited (reaped). Nothing happens when it has already exited. The one helper for this (the dev
    runner's FerretDB, Jaeger, the simulated cluster's processes)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def with_free_ports(services: Iterable[Service]) -> list[Service]:
    """The same services on free ports (tests must not collide with a running `make dev`)."""
    return [Service(s.name, free_port(), free_port() if s.grpc_port else None) for s in services]


def stack_env(services: Iterable[Service], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment shared by every process: where each neighbour listens."""
    env: dict[str, str] = {}
    for s in services:
        env[f"{s.name.upper()}_URL"] = f"http://127.0.0.1:{s.port}"
        if s.name == "auth":
            env["AUTH_JWKS_URL"] = f"http://127.0.0.1:{s.port}/.well-known/jwks.json"
        if s.grpc_port:
            env["PRODUCT_GRPC_TARGET"] = f"127.0.0.1:{s.grpc_port}"
    env.update(extra or {})
    return env


# FerretDB 1.x runs each command as read-then-write with no isolation between connections (FerretDB#3040):
# two conditional updates of one document at the same time can both win. Each database here has one writer
# process, so one connection per process (maxPoolSize=1) runs its commands one at a time, which restores the
# single-document atomicity the services rely on (docs/ferretdb.md). A real MongoDB needs none of this.
FERRETDB_CLIENT_OPTIONS = "maxPoolSize=1"
DATA_DIR = ROOT / ".data"


class FerretDB:
    """A FerretDB process (MongoDB wire protocol, SQLite backend) on 127.0.0.1:`port`, data in `data_dir`
    (one SQLite file per database, so it survives restarts). `kill` is kill -9, for the chaos runs."""

    def __init__(self, binary: Path, port: int, data_dir: Path, log_path: Path | None = None) -> None:
        self.binary, self.port, self.data_dir, self.log_path = binary, port, data_dir, log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The MONGO_URL the services get (each service picks its own database)."""
        return f"mongodb://127.0.0.1:{self.port}/?{FERRETDB_CLIENT_OPTIONS}"

    def start(self, timeout: float = 30.0) -> None:
        (self.data_dir / "state").mkdir(parents=True, exist_ok=True)
        output = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--state-dir={self.data_dir / 'state'}",
                "--debug-addr=-",  # its metrics/pprof listener would take a fixed port (8088)
                "--telemetry=disable",  # never report to FerretDB's beacon (and no internet here)
                "--log-level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if (code := self.process.poll()) is not None:
                raise RuntimeError(f"FerretDB exited with code {code} while starting (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"FerretDB did not listen on 127.0.0.1:{self.port} after {timeout:.0f}s")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, grace)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ferretdb_binary() -> Path:
    """./bin/ferretdb at the pinned version: from the tool cache, or built from its Go module source the
    first time (a few minutes, with progress). Raises RuntimeError saying what is missing."""
    bin_dir = Path(os.environ.get("SHOP_BIN") or ROOT / "bin")
    installed = subprocess.run([str(ROOT / "scripts" / "tools.sh"), "ferretdb"], cwd=ROOT, check=False)
    if installed.returncode != 0 or not (bin_dir / "ferretdb").exists():
        raise RuntimeError(
            "FerretDB is not available (see the lines above); the in-memory store needs nothing"
        )
    return bin_dir / "ferretdb"


class Stack:
    """A set of running service processes."""

    def __init__(
        self,
        services: list[Service],
        env: Mapping[str, str],
        log_dir: Path | None = None,
        root: Path = ROOT,
        python: str = sys.executable,
    ) -> None:
        self.services = services
        # the source tree and the Python the services run from (make bench also runs a baseline commit's)
        self.root, self.python = root, python
        self.env = dict(env)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.width = max(len(s.name) for s in services)
        # Services with an identity of their own at auth (OAuth 2.0 client credentials: SERVICE_CLIENTS in
        # services/topology.env). Cluster secrets come from scripts/secrets.sh; each Stack makes its own.
        self.client_secrets = {name: secrets.token_hex(32) for name in topology.SERVICE_CLIENTS}
        # Variables for one service only (e.g. its trace sampler), on top of `env`.
        self.service_env: dict[str, dict[str, str]] = {}
        # auth's signing key, kept for the stack's life as the cluster keeps it in Secret auth-jwt: a
        # restarted auth (make chaos kills it) still accepts the tokens it signed before.
        self.signing_key = _rsa_private_pem()
        self.session_secret = secrets.token_hex(32)  # the same for the frontend's cookies (frontend-session)

    def identity_env(self, name: str) -> dict[str, str]:
        """auth gets every client's secret and the signing key, each client only its own secret, the frontend
        its session secret (never printed, never written)."""
        if name == "auth":
            clients = ",".join(f"{c}={s}" for c, s in self.client_secrets.items())
            return {"OAUTH_CLIENTS": clients, "JWT_PRIVATE_KEY": self.signing_key}
        if name == "frontend":
            return {"SESSION_SECRET": self.session_secret}
        if name in self.client_secrets:
            return {"OAUTH_CLIENT_SECRET": self.client_secrets[name]}
        return {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._service(name).port}"

    def grpc_target(self) -> str:
        return f"127.0.0.1:{self._service('product').grpc_port}"

    def _service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def start(self, timeout: float = 60.0) -> None:
        for service in self.services:
            self._spawn(service, mode="wb")
        for service in self.services:
            self.wait_ready(service, timeout)

    def _spawn(self, service: Service, mode: str) -> None:
        env = {**os.environ, **self.env, **self.identity_env(service.name)}
        env.update(self.service_env.get(service.name, {}))
        env.update(HOST="127.0.0.1", PORT=str(service.port))
        if service.grpc_port:
            env["GRPC_PORT"] = str(service.grpc_port)
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{service.name}.log").open(mode)
        self.processes[service.name] = subprocess.Popen(
            [self.python, "-m", f"services.{service.name}"],
            cwd=self.root,
            env=env,
            stdout=output if output else subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if output is None:  # `make dev`: show every line, prefixed with the service name
            stream = self.processes[service.name].stdout
            threading.Thread(target=_pump, args=(service.name, stream, self.width), daemon=True).start()

    def kill(self, name: str) -> None:
        """kill -9 one service: no shutdown hooks, open requests cut off mid-way."""
        process = self.processes[name]
        if process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start one (killed or stopped) service again, its log appended to, and wait until it is ready."""
        self.kill(name)
        service = self._service(name)
        self._spawn(service, mode="ab")
        self.wait_ready(service, timeout)

    def wait_ready(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{service.port}/readyz"
        while time.monotonic() < deadline:
            if (code := self.processes[service.name].poll()) is not None:
                raise RuntimeError(
                    f"{service.name} exited with code {code} while starting{self._log_hint(service)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    served_by = response.headers.get("x-served-by", "")
                    if response.status == 200 and served_by.split("/")[0] == service.name:
                        return
                    if response.status == 200:  # another process holds the port: this one cannot bind it
                        other = f"{served_by or 'another server'}{self._log_hint(service)}"
                        raise RuntimeError(f"{service.name}'s port {service.port} is answered by {other}")
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"{service.name} was not ready on {url} after {timeout:.0f}s{self._log_hint(service)}"
        )

    def _log_hint(self, service: Service) -> str:
        return f" (log: {self.log_dir / (service.name + '.log')})" if self.log_dir else ""

    def crashed(self) -> list[tuple[str, int]]:
        return [(name, code) for name, p in self.processes.items() if (code := p.poll()) is not None]

    def stop(self, grace: float = 10.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _rsa_private_pem() -> str:
    """A fresh RSA 2048 private key, PEM (PKCS#8), as scripts/secrets.sh makes for the cluster."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pump(name: str, stream: object, width: int) -> None:
    """Copy a child's output to ours, each line prefixed with the service name."""
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:<{width}} | {raw.decode(errors='replace')}")
        sys.stdout.flush()


def start_tracing(stack: Stack) -> Jaeger:
    """Jaeger on its default ports (log in artifacts/jaeger.log); every service of `stack` exports to it."""
    if (
        str(ROOT) not in sys.path
    ):  # run as `python scripts/dev.py`: the repo root makes `scripts.*` importable
        sys.path.insert(0, str(ROOT))
    from scripts.jaeger import Jaeger, jaeger_binary, tracing_env

    (ROOT / "artifacts").mkdir(exist_ok=True)
    tracer = Jaeger(jaeger_binary(), log_path=ROOT / "artifacts" / "jaeger.log")
    tracer.start()
    stack.service_env = {s.name: tracing_env(s.name, tracer) for s in stack.services}
    print(
        f"tracing: Jaeger on 127.0.0.1, OTLP {tracer.ports.otlp_grpc} (gRPC), {tracer.ports.otlp_http} (HTTP)"
    )
    return tracer


def with_port_base(services: Iterable[Service], base: int) -> list[Service]:
    """The services on base, base+1, ... in topology order; product's gRPC right after the last one."""
    order = [s.name for s in SERVICES]
    grpc_port = base + len(SERVICES)
    return [Service(s.name, base + order.index(s.name), grpc_port if s.grpc_port else None) for s in services]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated services to run (default: all)")
    parser.add_argument(
        "--tracing",
        choices=("off", "jaeger"),
        default="off",
        help="jaeger: start Jaeger (UI http://127.0.0.1:16686) and export every service's spans to it",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "ferretdb"),
        default="memory",
        help="memory (default): the in-memory substitute; ferretdb: a real MongoDB wire-protocol server "
        "with data kept in .data/ferretdb (MONGO_URL, when set, wins over both)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        help="listen on PORT_BASE, +1, ... (topology order; product's gRPC and FerretDB on the next two) "
        "instead of the documented ports, to run beside another stack",
    )
    args = parser.parse_args(argv)
    services = available()
    if args.only:
        wanted = set(args.only.split(","))
        services = [s for s in services if s.name in wanted]
    if not services:
        print("no services to run", file=sys.stderr)
        return 2
    if args.port_base:
        services = with_port_base(services, args.port_base)
    extra: dict[str, str] = {}
    database: FerretDB | None = None
    if os.environ.get("MONGO_URL"):
        store = "MongoDB at MONGO_URL"
    elif args.store == "ferretdb":
        port = args.port_base + len(SERVICES) + 1 if args.port_base else topology.DEV_FERRETDB_PORT
        try:
            database = FerretDB(ferretdb_binary(), port, DATA_DIR / "ferretdb", DATA_DIR / "ferretdb.log")
            database.start()
        except RuntimeError as exc:
            print(f"!! {exc}", file=sys.stderr)
            return 1
        extra["MONGO_URL"] = database.url
        store = (
            f"FerretDB on 127.0.0.1:{port} (data in {DATA_DIR / 'ferretdb'}, log {DATA_DIR / 'ferretdb.log'})"
        )
    else:
        store = "in-memory store (make dev STORE=ferretdb for a real server, or set MONGO_URL)"
    print(f"starting {len(services)} services with the {store}; Ctrl-C stops them all")
    stack = Stack(services, stack_env(services, extra))
    tracer = None
    if args.tracing == "jaeger":
        try:
            tracer = start_tracing(stack)
        except RuntimeError as exc:
            print(f"!! {exc}", file=sys.stderr)
            if database is not None:
                database.stop()
            return 1
    width = stack.width
    # SIGINT (Ctrl-C) and SIGTERM both stop the stack, even when started from a script that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.start()
        print("\nthe shop is up:")
        for s in services:
            grpc = f", gRPC 127.0.0.1:{s.grpc_port}" if s.grpc_port else ""
            print(f"  {s.name:<{width}}  http://127.0.0.1:{s.port}  (API docs /docs{grpc})")
        if any(s.name == "frontend" for s in services):
            print(f"\nopen {stack.url('frontend')} in a browser")
        if tracer is not None:
            print(
                f"traces: Jaeger UI and query API {tracer.ui_url} (service frontend, e.g. POST /api/checkout)"
            )
        while True:
            if crashed := stack.crashed():
                for name, code in crashed:
                    print(f"\n!! {name} exited with code {code}; stopping the others", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    except RuntimeError as exc:
        print(f"\n!! {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        if tracer is not None:
            tracer.stop()
        if database is not None:
            database.stop()


if __name__ == "__main__":
    sys.exit(main())
