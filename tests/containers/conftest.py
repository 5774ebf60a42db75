"""Fixtures of `make image-test`: the images it built, the shop running from them as the kubelet would run
it, and the report printed at the end (sizes, the purchases, peak memory per container against its limit).

scripts/image-test.sh starts the Docker engine, builds the images and then runs this folder with
IMAGE_TEST_RUN (the run's id, also the label on everything it creates), DOCKER, IMAGE_REPO and IMAGE_TAG set.
Run any other way, every test here skips and says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.dev import free_port
from scripts.k8svalidate.render import render
from services.topology import SERVICES
from tests.containers.database import InMemoryStore, MongoServer
from tests.containers.engine import Docker, MemoryWatch
from tests.containers.kubelet import Cluster
from tests.containers.report import REPORT
from tests.containers.shop import Shop

RUN = os.environ.get("IMAGE_TEST_RUN", "")
# The database of the test: ONE line to switch to a real MongoDB wire-protocol server (database.py says how).
DATABASE = (
    MongoServer(os.environ["IMAGE_TEST_MONGO_URL"])
    if os.environ.get("IMAGE_TEST_MONGO_URL")
    else InMemoryStore()
)
MIB = 1024 * 1024


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Outside `make image-test`, skip this folder before any of its fixtures (engine, images) is set up."""
    if RUN:
        return
    skip = pytest.mark.skip(reason="run by `make image-test` (it starts Docker and builds the images first)")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def docker() -> Docker:
    return Docker(os.environ.get("DOCKER", "docker"), f"shop.image-test={RUN}")


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    repo, tag = os.environ.get("IMAGE_REPO", "shop/"), os.environ.get("IMAGE_TAG", "dev")
    return {s: f"{repo}{s}:{tag}" for s in SERVICES}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """k8s/base as kustomize renders it: the one source of how each container runs."""
    return Cluster(render("k8s/base"))


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"image-test-{RUN}-") as tmp:
        path = Path(tmp)
        path.chmod(0o755)  # bind-mounted files must be reachable by the containers' user
        yield path


@pytest.fixture(scope="session")
def shop(docker: Docker, cluster: Cluster, images: dict[str, str], work_dir: Path) -> Iterator[Shop]:
    """The eight services, each in its own container as k8s/base runs it, ready (probes passing)."""
    running = Shop(docker, cluster, images, DATABASE, work_dir, free_port, prefix=f"shop-it-{RUN}")
    try:
        running.start()
        running.wait_ready()
        print(
            f"\n==> the shop runs in {len(running.containers)} containers; database: {DATABASE.description}"
        )
        for service, container in running.containers.items():
            REPORT["overrides"][service] = container.plan.overrides
            print(
                f"    {service:13} {container.http}   differences from the pod: "
                + "; ".join(container.plan.overrides)
            )
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def memory(shop: Shop) -> Iterator[MemoryWatch]:
    """Working-set peaks of every container, sampled from the start of the first test that asks."""
    cgroups = {s: c.cgroup for s, c in shop.containers.items() if c.cgroup is not None}
    watch = MemoryWatch(cgroups)
    yield watch
    watch.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RUN:
        return
    write = terminalreporter.write_line
    if REPORT["sizes"]:
        write("")
        write("image sizes (uncompressed) against the 150 MB budget:")
        width = max(map(len, REPORT["sizes"]))
        for image, size in REPORT["sizes"].items():
            write(f"  {image:{width}} {size / 1e6:7.1f} MB")
    for line in REPORT["purchases"]:
        write(line)
    if REPORT["memory"]:
        write("")
        write("peak memory per container against its limit (cgroup; working set = usage - inactive file):")
        write(
            f"  {'service':13} {'limit':>8} {'peak charge':>12} {'peak working set':>17} {'% limit':>8} "
            f"{'OOM kills':>9} {'restarts':>8} {'state':>8}"
        )
        for service, row in REPORT["memory"].items():
            peak = f"{row['peak'] / MIB:10.1f}Mi" if row["peak"] is not None else f"{'(gone)':>12}"
            write(
                f"  {service:13} {row['limit'] / MIB:6.0f}Mi {peak} "
                f"{row['working_set'] / MIB:15.1f}Mi {100 * row['working_set'] / row['limit']:7.0f}% "
                f"{row['oom_kills']:9d} {row['restarts']:8d} {row['status']:>8}"
            )
