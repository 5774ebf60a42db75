"""The built images themselves: size budget, what is (not) inside, and how one fails without MONGO_URL."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.dev import free_port
from tests.containers.engine import Docker
from tests.containers.kubelet import Cluster, allocate_ports, plan
from tests.containers.report import REPORT
from tests.containers.shop import shop_secrets

BUDGET_BYTES = 150 * 1000 * 1000  # "150 MB uncompressed" (Dockerfile), as `docker image ls` counts MB
NO_MONGO_URL = (
    "order cannot start: MONGO_URL is not set, and the in-memory store for development (mongomock-motor) "
    "is not installed here: set MONGO_URL to this service's MongoDB URL, e.g. mongodb://user:password@host:27017/order"
)


def test_every_image_is_within_the_size_budget(docker: Docker, images: dict[str, str]) -> None:
    sizes = {i: int(docker("image", "inspect", "--format", "{{.Size}}", i).stdout) for i in images.values()}
    REPORT["sizes"] = sizes
    over = {image: f"{size / 1e6:.1f} MB" for image, size in sizes.items() if size > BUDGET_BYTES}
    assert not over, f"over the 150 MB budget: {over}"


def test_the_runtime_image_has_python_and_no_shell_pip_or_package_manager(
    docker: Docker, images: dict[str, str]
) -> None:
    probe = (
        "import importlib.util, json, os, sys\n"
        "tools = ('/bin/sh', '/usr/bin/sh', '/bin/bash', '/usr/bin/apt', '/usr/bin/apt-get', '/usr/bin/dpkg',"
        " '/usr/bin/pip', '/usr/bin/pip3', '/usr/local/bin/pip')\n"
        "print(json.dumps({'present': [t for t in tools if os.path.lexists(t)], 'uid': os.getuid(),"
        " 'python': sys.version.split()[0], 'executable': os.path.realpath('/usr/bin/python3'),"
        " 'pip': importlib.util.find_spec('pip') is not None,"
        " 'in_memory_store': importlib.util.find_spec('mongomock_motor') is not None}))"
    )
    isolated = ["run", "--rm", "--label", docker.label, "--network", "none"]
    run = docker(*isolated, "--entrypoint", "/usr/bin/python3", images["order"], "-c", probe)
    found = json.loads(run.stdout)
    assert found["present"] == [], f"the runtime image has a shell or package tools: {found['present']}"
    assert found["pip"] is False and found["in_memory_store"] is False
    assert found["uid"] == 10001  # the Dockerfile's USER
    assert found["python"].startswith("3.13.") and found["executable"] == "/usr/bin/python3.13"
    no_shell = docker(*isolated, "--entrypoint", "/bin/sh", images["order"], "-c", "true", check=False)
    assert no_shell.returncode != 0


def test_an_image_started_without_mongo_url_stops_with_one_line_saying_what_to_set(
    docker: Docker, images: dict[str, str], cluster: Cluster, work_dir: Path
) -> None:
    ports = allocate_ports(cluster, free_port)
    unset = {"MONGO_URL": "the case under test"}
    run = plan(
        cluster,
        "order",
        ports=ports,
        secrets=shop_secrets(),
        volume_dir=work_dir / "no-mongo",
        unset_env=unset,
    )
    env = [item for key, value in run.env.items() for item in ("--env", f"{key}={value}")]
    proc = docker(
        "run", "--rm", "--label", docker.label, *run.options, *env, images["order"], check=False, timeout=90
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == NO_MONGO_URL
