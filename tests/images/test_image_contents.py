"""What goes into the container images, checked without Docker.

The images install only requirements/runtime.txt into a distroless Python 3.13 (no compilers, no pip),
so every runtime dependency must ship a wheel for both linux/amd64 and linux/arm64, and every service
must start from those packages alone: no test or dev dependency may sneak into service code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from scripts.dev import free_port
from services import topology

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "requirements" / "runtime.txt"
SERVICES = topology.SERVICES
DEV_ONLY = ("mongomock", "mongomock_motor", "motor", "pytest", "grpc_tools", "locust", "playwright")
MANYLINUX = ("2_17", "2014", "2_24", "2_26", "2_27", "2_28", "2_31", "2_34", "2_35", "2_39")


def _stages(dockerfile: str) -> list[str]:
    return re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]


def test_dockerfile_runtime_stage_is_small_non_root_and_exec_form() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = _stages(dockerfile)[-1]
    assert runtime.startswith("${RUNTIME_IMAGE}")
    assert "ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian13" in dockerfile
    assert re.search(r"ARG BUILD_IMAGE=python:3\.13\.\d+-slim-\w+", dockerfile), (
        "build stage pinned to a version"
    )
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    # Distroless has no shell: exec form, and an absolute interpreter path as distroless recommends.
    assert 'ENTRYPOINT ["/usr/bin/python3", "-m", "services"]' in runtime
    assert "pip install" not in runtime and "apt-get" not in runtime and "RUN " not in runtime
    assert "requirements/runtime.txt" in dockerfile
    # The runtime stage gets files only from the builder, which refuses sdists (no compiler anywhere).
    copies = re.findall(r"^COPY (.*)$", runtime, re.MULTILINE)
    assert copies and all(c.startswith("--from=builder ") for c in copies)
    assert "pip install --only-binary=:all:" in _stages(dockerfile)[0]
    assert re.search(r"^ENV PYTHONPATH=/opt/site:/app", runtime, re.MULTILINE)


def test_dockerfile_builds_without_fetching_a_frontend_image() -> None:
    """No `# syntax=` directive: BuildKit would pull docker/dockerfile from Docker Hub before every build
    (failing offline, e.g. in CI here); the Dockerfile uses only what every builtin frontend knows."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.MULTILINE | re.IGNORECASE)
    assert "RUN --mount" not in dockerfile and "<<" not in dockerfile  # features a pinned frontend would need


def test_build_and_runtime_python_are_the_same_minor() -> None:
    """Wheels and .pyc files from the builder's CPython must suit the distroless one (3.13 on debian13)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    build = re.search(r"ARG BUILD_IMAGE=python:(\d+\.\d+)\.\d+-slim-(\w+)", dockerfile)
    runtime = re.search(r"ARG RUNTIME_IMAGE=gcr\.io/distroless/python3-debian(\d+)", dockerfile)
    assert build and runtime
    debian_python = {"12": ("3.11", "bookworm"), "13": ("3.13", "trixie")}[runtime.group(1)]
    assert (build.group(1), build.group(2)) == debian_python


def test_dockerignore_sends_only_runtime_files() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*"
    assert "!requirements/runtime.txt" in lines and "!services/" in lines


def test_runtime_requirements_hold_no_dev_tools() -> None:
    pinned = {line.split("==")[0].lower() for line in RUNTIME.read_text().splitlines() if "==" in line}
    for name in ("mongomock", "mongomock-motor", "motor", "pytest", "grpcio-tools", "locust", "playwright"):
        assert name not in pinned


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_runtime_dependency_has_a_cp313_wheel(arch: str, tmp_path: Path) -> None:
    platforms = []
    for version in MANYLINUX:
        tag = f"manylinux2014_{arch}" if version == "2014" else f"manylinux_{version}_{arch}"
        platforms += ["--platform", tag]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--only-binary=:all:",
            *platforms,
            "--python-version",
            "3.13",
            "--implementation",
            "cp",
            "--target",
            str(tmp_path),
            "-r",
            str(RUNTIME),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode and re.search(
        r"(?i)connection|network is unreachable|name resolution", result.stderr
    ):
        pytest.skip(f"PyPI unreachable, wheel availability not checked: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only requirements/runtime.txt, like the image's /opt/site."""
    target = tmp_path_factory.mktemp("runtime-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    python = target / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--only-binary=:all:", "-r", str(RUNTIME)],
        check=True,
        timeout=600,
    )
    return python


@pytest.mark.timeout(900)
def test_every_service_builds_from_the_runtime_packages_alone(runtime_python: Path) -> None:
    probe = f"""
import sys
from importlib import import_module
for name in {SERVICES!r}:
    module = import_module(f"services.{{name}}.app")
    settings_module = import_module(f"services.{{name}}.settings")
    settings = settings_module.Settings(mongo_url="mongodb://mongodb.invalid:27017")
    app = module.build_app(settings)
    assert app.title, name
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {DEV_ONLY!r})
print("LEAKED", leaked)
assert not leaked, leaked
"""
    result = subprocess.run(
        [str(runtime_python), "-I", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{probe}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "LEAKED []" in result.stdout


def _image_env(**extra: str) -> dict[str, str]:
    """The image's environment (Dockerfile ENV), with the repo standing in for /app."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR")}
    return {**keep, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", **extra}


def test_entry_point_without_service_says_what_to_set(runtime_python: Path) -> None:
    result = subprocess.run(
        [str(runtime_python), "-m", "services"], cwd=ROOT, env=_image_env(), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"set SERVICE to one of: {' '.join(SERVICES)}" in result.stderr


@pytest.mark.timeout(120)
def test_entry_point_serves_the_service_named_by_SERVICE(runtime_python: Path) -> None:
    """`python3 -m services` with SERVICE=frontend (needs no MongoDB) answers its probes on $HOST:$PORT."""
    port = free_port()
    env = _image_env(SERVICE="frontend", HOST="127.0.0.1", PORT=str(port), VERSION="v9")
    cmd = [str(runtime_python), "-m", "services"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    assert resp.headers["x-served-by"] == "frontend/v9"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the frontend did not answer /healthz within 60 s"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_entry_point_without_mongo_url_stops_with_one_line_saying_what_to_set(runtime_python: Path) -> None:
    """The images have no in-memory store: a service that needs MongoDB and has no MONGO_URL stops at once."""
    env = _image_env(SERVICE="order", HOST="127.0.0.1", PORT=str(free_port()))
    cmd = [str(runtime_python), "-m", "services"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "order cannot start: MONGO_URL is not set, and the in-memory store for development (mongomock-motor) "
        "is not installed here: set MONGO_URL to this service's MongoDB URL, "
        "e.g. mongodb://user:password@host:27017/order"
    )
