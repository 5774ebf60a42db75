"""What the benchmark starts: the shop from a source tree (this checkout, or a baseline commit's copy), the
bare reference app, and the Envoy proxies. All on free loopback ports, logs under the output folder."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import envoy
from scripts.dev import ROOT, SERVICES, Stack, free_port, stack_env, with_free_ports

# Tokens outlive a long run (auth's default is 15 minutes); everything else as `make dev` runs it.
STACK_ENV = {"ACCESS_TOKEN_TTL_SECONDS": "7200", "LOG_LEVEL": "INFO"}


@dataclass(frozen=True)
class Tree:
    """A source tree whose services are measured: `label` names it in the tables."""

    label: str
    root: Path
    python: str = sys.executable  # the interpreter (its virtualenv's packages) the services run on


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def current_tree() -> Tree:
    head = git("rev-parse", "--short", "HEAD").strip()
    changed = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    return Tree(f"{head}+changes" if changed else head, ROOT)


def baseline_tree(spec: str, into: Path) -> Tree:
    """The files of a git revision copied into `into` (git archive: no worktree left over). `spec` is
    `REVISION` or `REVISION=PYTHON`: the services then run on that interpreter (a virtualenv with the
    packages of that time, e.g. without a dependency added since)."""
    revision, _, python = spec.partition("=")
    if python and not Path(python).exists():
        raise SystemExit(f"--baseline {spec}: no interpreter at {python}")
    short = git("rev-parse", "--short", revision).strip()
    archive = into / "baseline.tar"
    git("archive", "--format=tar", "-o", str(archive), revision)
    root = into / f"baseline-{short}"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    archive.unlink()
    return Tree(
        f"{short} ({Path(python).parent.parent.name})" if python else short, root, python or sys.executable
    )


@dataclass
class Shop:
    """The eight services of one tree on free ports, with one store (and its database process, if any)."""

    tree: Tree
    store: str
    log_dir: Path
    database_url: str | None = None
    database_pid: int | None = None
    stack: Stack = field(init=False)

    def start(self) -> None:
        services = with_free_ports(SERVICES)
        extra = dict(STACK_ENV)
        if self.database_url:
            extra["MONGO_URL"] = self.database_url
        env = stack_env(services, extra)
        self.stack = Stack(services, env, log_dir=self.log_dir, root=self.tree.root, python=self.tree.python)
        self.stack.start(timeout=120)

    def url(self, name: str) -> str:
        return self.stack.url(name)

    @property
    def pids(self) -> dict[str, int]:
        found = {name: process.pid for name, process in self.stack.processes.items()}
        if self.database_pid is not None:
            found["database"] = self.database_pid
        return found

    def stop(self) -> None:
        self.stack.stop()


@dataclass
class ReferenceApp:
    """bench/reference_app.py on a free port."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / "reference.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.reference_app", str(self.port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/healthz", self.process, timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Proxies:
    """The proxy shapes of bench/envoy.py in front of one service port, started together."""

    folder: Path
    upstream_port: int
    shapes: dict[str, list[envoy.Proxy]] = field(default_factory=dict)
    _keys: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._keys = tempfile.TemporaryDirectory(prefix="bench-keys-")  # private keys: never in artifacts/
        self.shapes = {
            "one_proxy": envoy.one_proxy(self.folder, self.upstream_port),
            "mesh_hop": envoy.mesh_hop(self.folder, Path(self._keys.name), self.upstream_port),
        }
        for proxies in self.shapes.values():
            for proxy in proxies:
                proxy.start()

    def url(self, shape: str) -> str:
        return f"http://127.0.0.1:{self.shapes[shape][0].listen_port}"

    def pids(self, shape: str) -> list[int]:
        return [proxy.process.pid for proxy in self.shapes[shape] if proxy.process is not None]

    def version(self) -> str:
        return self.shapes["one_proxy"][0].version()

    def stop(self) -> None:
        for proxies in self.shapes.values():
            for proxy in proxies:
                proxy.stop()
        if self._keys is not None:
            self._keys.cleanup()
