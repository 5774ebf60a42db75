"""The database the containers of `make image-test` use: a real MongoDB server, or the in-memory store.

The images ship without an in-memory store (an image started without MONGO_URL stops with a configuration
error). Until the shop has a real MongoDB wire-protocol server here (FerretDB, the chaos-runs issue), the test
layers mongomock-motor onto the containers of this test only: a read-only bind mount of its packages, pinned
as in requirements/dev.txt, added to PYTHONPATH, with MONGO_URL left unset. The shipped images stay unchanged.

Switching to a real server is one line in tests/containers/conftest.py (`DATABASE = ...`), or no line at all:
`IMAGE_TEST_MONGO_URL=mongodb://127.0.0.1:27017 make image-test` gives every service its own database there,
through the same `mongo-<service>` Secrets the manifests read (options kept: FerretDB 1.x wants
`mongodb://127.0.0.1:<port>/?maxPoolSize=1`: one connection per client).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
IN_MEMORY_PACKAGES = ("mongomock", "mongomock-motor", "motor", "pytz", "sentinels")  # deps the image lacks
MOUNT = "/opt/in-memory-store"


class InMemoryStore:
    """mongomock-motor layered onto the containers of this test only (see the module docstring)."""

    description = "in-memory store (mongomock-motor, layered onto this test's containers only)"
    unset_env = frozenset({"MONGO_URL"})

    def __init__(self) -> None:
        self.site: Path | None = None

    def prepare(self, work_dir: Path) -> None:
        pins = _pins(IN_MEMORY_PACKAGES)
        self.site = work_dir / "in-memory-store"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--no-compile",
                "--target",
                str(self.site),
                *pins,
            ],
            check=True,
            timeout=300,
        )

    def secrets(self, services: Iterable[str]) -> dict[str, dict[str, str]]:
        return {}

    def run_options(self, image_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """docker run options and environment that add the store to a container of an image."""
        assert self.site is not None, "prepare() first"
        path = ":".join(p for p in (image_env.get("PYTHONPATH", ""), MOUNT) if p)
        return ["--mount", f"type=bind,source={self.site},target={MOUNT},readonly"], {"PYTHONPATH": path}


class MongoServer:
    """A real MongoDB wire-protocol server (FerretDB, mongod) at `url`; each service gets its own database."""

    unset_env: frozenset[str] = frozenset()

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"MongoDB wire-protocol server at {self.url}"

    def prepare(self, work_dir: Path) -> None:
        pass

    def secrets(self, services: Iterable[str]) -> dict[str, dict[str, str]]:
        """The `mongo-<service>` Secrets scripts/secrets.sh creates in the cluster, pointing here."""
        return {f"mongo-{s}": {"url": self.database_url(s)} for s in services}

    def database_url(self, database: str) -> str:
        """The server's URL naming `database`, its options kept (FerretDB wants `?maxPoolSize=1`)."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def run_options(self, image_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return [], {}


def _pins(names: Iterable[str]) -> list[str]:
    """`name==version` for each package, from requirements/dev.txt (the versions `make dev` uses)."""
    text = (ROOT / "requirements" / "dev.txt").read_text()
    pins = []
    for name in names:
        match = re.search(rf"^{re.escape(name)}==(\S+)", text, re.MULTILINE | re.IGNORECASE)
        if not match:
            raise LookupError(f"{name} is not pinned in requirements/dev.txt")
        pins.append(f"{name}=={match.group(1)}")
    return pins
