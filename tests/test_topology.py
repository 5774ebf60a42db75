"""One list of services: `services/topology.env`, read by bash, make and Python; written out nowhere else.

Adding a service (docs/architecture.md, "How to add a service") means appending it to SERVICES there: the
dev runner, `make up`, the Secrets, MongoDB's users and every test follow. A copy of the list anywhere else
would silently miss the new service, so any file that writes all the names out again fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services import topology

ROOT = Path(__file__).resolve().parents[1]
# Files that may name every service in a row, and why.
ALLOWED = {
    # The one source.
    "services/topology.env": "the list itself",
    # kustomize cannot read the topology; test_kustomization_lists_a_manifest_per_service checks it.
    "k8s/base/kustomization.yaml": "kustomize's list of manifest files",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_GAP = 2  # other words allowed between two names of a run (`Service("auth", 8081), Service("user"...`)


def written_out(text: str, names: tuple[str, ...] = topology.SERVICES) -> list[int]:
    """Line numbers where every one of `names` appears in one run of names, in any order, with at most
    MAX_GAP other words between neighbours (a Python list, a bash string, a tuple of records...)."""
    wanted = set(names)
    found: list[int] = []
    run: list[tuple[str, int]] = []
    gap = 0
    for match in _WORD.finditer(text):
        word = match.group(0).lower()
        if word in wanted:
            run.append((word, match.start()))
            gap = 0
            if {name for name, _ in run} == wanted:
                found.append(text.count("\n", 0, run[0][1]) + 1)
                run = []
        else:
            gap += 1
            if gap > MAX_GAP:
                run, gap = [], 0
    return found


def _repo_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_the_service_list_is_written_out_only_in_the_topology_file() -> None:
    copies = []
    for path in _repo_text_files():
        relative = path.relative_to(ROOT).as_posix()
        # Markdown is prose for people (tables, sentences), not a list a program reads.
        if relative in ALLOWED or path.suffix == ".md":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        copies += [f"{relative}:{line}" for line in written_out(text)]
    assert copies == [], (
        "the service list is written out again; read it from services/topology.env instead "
        f"(Python: services.topology.SERVICES, bash: $SERVICES after sourcing scripts/lib.sh): {copies}"
    )


NAMES = topology.SERVICES
PLANTED = {  # built from the topology, so this file holds no copy itself
    "python-list": f"SERVICES = {list(NAMES)!r}",
    "bash-loop": f'for svc in {" ".join(NAMES)}; do build "$svc"; done',
    "dev-runner-records": "".join(f'Service("{s}", {topology.dev_port(s)}),\n' for s in reversed(NAMES)),
    "js-reordered": f"const services = {json.dumps(sorted(NAMES))};",
}


@pytest.mark.parametrize("planted", PLANTED.values(), ids=PLANTED.keys())
def test_the_copy_finder_catches_a_planted_list(planted: str) -> None:
    assert written_out(f"# a file\n{planted}\n") == [2]


@pytest.mark.parametrize(
    "innocent",
    [
        "frontend calls auth, user, product, order and notification",  # seven: not the list
        "frontend auth user product payment order is what the long long long sentence says before shipping "
        "notification",
        "SERVICE = 'order'",
    ],
)
def test_the_copy_finder_leaves_prose_and_single_names_alone(innocent: str) -> None:
    assert written_out(innocent) == []


def test_kustomization_lists_a_manifest_per_service() -> None:
    base = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    services = [
        r.removesuffix(".yaml") for r in base["resources"] if r not in ("namespace.yaml", "mongodb.yaml")
    ]
    assert services == list(topology.SERVICES)
    assert base["namespace"] == topology.NAMESPACE


def _bash(script: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_NAME", "SERVICES")}
    completed = subprocess.run(
        ["bash", "-c", f"source scripts/lib.sh && {script}"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def test_bash_reads_the_same_topology_as_python() -> None:
    out = _bash('echo "$CLUSTER_NAME|$NAMESPACE|$KUBE_CONTEXT|$SERVICES"; database_services')
    first, *databases = out.splitlines()
    assert first == "|".join(
        [
            topology.CLUSTER_NAME,
            topology.NAMESPACE,
            f"kind-{topology.CLUSTER_NAME}",
            " ".join(topology.SERVICES),
        ]
    )
    assert databases == list(topology.WITH_DATABASE)
    assert "frontend" not in databases


def test_only_the_cluster_name_may_come_from_the_environment() -> None:
    out = _bash(
        'echo "$CLUSTER_NAME $KUBE_CONTEXT $NAMESPACE"', CLUSTER_NAME="class-7", NAMESPACE="elsewhere"
    )
    assert out.split() == ["class-7", "kind-class-7", topology.NAMESPACE]


def test_versions_env_holds_only_pinned_versions() -> None:
    pins = topology.read_env_file(ROOT / "scripts" / "versions.env")
    assert not set(pins) & set(topology.read_env_file(topology.FILE)), "topology keys belong in topology.env"


def test_dev_ports_follow_the_list() -> None:
    assert [topology.dev_port(s) for s in topology.SERVICES] == list(
        range(8080, 8080 + len(topology.SERVICES))
    )
    assert topology.dev_url("frontend") == "http://127.0.0.1:8080"
    assert topology.dev_grpc_target() == "127.0.0.1:9000"
    with pytest.raises(ValueError, match="unknown service 'basket'"):
        topology.dev_port("basket")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (mongosh, MongoDB's shell, is Node.js)")
def test_mongodb_init_creates_a_user_per_service_with_a_database(tmp_path: Path) -> None:
    """The init script (run by mongosh in the mongodb pod) on a directory laid out like a Secret volume."""
    users = tmp_path / "users"
    data = tmp_path / "users" / "..2026_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for service in topology.WITH_DATABASE:
        (data / service).write_text(f"pw-{service}\n")
        (users / service).symlink_to(data / service)
    (users / "..data").symlink_to(data)
    script = (ROOT / "k8s" / "base" / "mongodb-init.js").read_text()
    runner = f"""
const vm = require('vm');
const created = [];
const db = {{getSiblingDB: (name) => ({{createUser: (user) => created.push({{db: name, ...user}})}})}};
const context = {{db, print: () => {{}}, require, USERS_DIR: {json.dumps(str(users))}}};
vm.runInNewContext({json.dumps(script)}, context);
console.log(JSON.stringify(created));
"""
    out = subprocess.run(["node", "-e", runner], capture_output=True, text=True, check=True).stdout
    created = {user["db"]: user for user in json.loads(out)}
    assert sorted(created) == sorted(topology.WITH_DATABASE)
    for service, user in created.items():
        assert user["user"] == service and user["pwd"] == f"pw-{service}"
        assert user["roles"] == [{"role": "readWrite", "db": service}]
