"""tests/containers/kubelet.py, offline: k8s/base becomes the docker options `make image-test` runs, and every
pod setting it cannot reproduce is refused rather than dropped (each with a planted manifest)."""

from __future__ import annotations

import copy
import itertools
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.k8svalidate.render import render
from services.topology import SERVICES
from tests.containers.kubelet import (
    Cluster,
    MissingSecret,
    Unsupported,
    allocate_ports,
    localize,
    parse_quantity,
    plan,
)
from tests.containers.shop import shop_secrets

DOCS = render("k8s/base")


def _ports(cluster: Cluster) -> dict[str, dict[int, int]]:
    numbers = itertools.count(41000)
    return allocate_ports(cluster, lambda: next(numbers))


def _secrets() -> dict[str, dict[str, str]]:
    return {**shop_secrets(), **{f"mongo-{s}": {"url": f"mongodb://127.0.0.1:1/{s}"} for s in SERVICES}}


def _cluster(change: Any = None) -> Cluster:
    docs = copy.deepcopy(DOCS)
    if change:
        auth = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "auth")
        change(auth["spec"]["template"]["spec"])
    return Cluster(docs)


def _plan(tmp_path: Path, change: Any = None, service: str = "auth", **kwargs: Any) -> Any:
    cluster = _cluster(change)
    options = {"ports": _ports(cluster), "secrets": _secrets(), "volume_dir": tmp_path, **kwargs}
    return plan(cluster, service, **options)


def _pairs(options: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(options))


@pytest.mark.parametrize("service", SERVICES)
def test_every_deployment_of_k8s_base_translates(service: str, tmp_path: Path) -> None:
    run = _plan(tmp_path, service=service)
    pod, container = _cluster().pod_spec(service), _cluster().container(service)
    limits, requests, security = (
        container["resources"]["limits"],
        container["resources"]["requests"],
        {**pod["securityContext"]},
    )
    pairs = _pairs(run.options)
    assert ("--network", "host") in pairs
    assert ("--user", f"{security['runAsUser']}:{security['runAsGroup']}") in pairs
    assert ("--group-add", str(security["fsGroup"])) in pairs
    assert ("--memory", str(int(parse_quantity(limits["memory"])))) in pairs
    assert ("--memory-swap", str(int(parse_quantity(limits["memory"])))) in pairs  # no swap, as the kubelet
    assert ("--cpus", f"{parse_quantity(limits['cpu']):g}") in pairs
    assert ("--cpu-shares", str(int(parse_quantity(requests["cpu"]) * 1024))) in pairs
    assert "--read-only" in run.options and ("--cap-drop", "ALL") in pairs
    assert ("--security-opt", "no-new-privileges") in pairs
    assert "--privileged" not in run.options and not any("seccomp" in o for o in run.options)
    assert run.probes and all(p.url.startswith(("http://127.0.0.1:", "127.0.0.1:")) for p in run.probes)
    assert run.env["HOST"] == "127.0.0.1" and int(run.env["PORT"]) in run.listeners.values()
    assert not any(":3000" in v or "//auth:" in v for v in run.env.values()), run.env


def test_empty_dirs_become_tmpfs_of_their_size_limit_and_nothing_else_does(tmp_path: Path) -> None:
    run = _plan(tmp_path)
    tmpfs = [b for a, b in itertools.pairwise(run.options) if a == "--tmpfs"]
    assert tmpfs == [f"/tmp:rw,nosuid,nodev,mode=1777,size={64 * 1024 * 1024}"]


def test_a_secret_volume_is_a_read_only_bind_mount_of_files_with_its_mode(tmp_path: Path) -> None:
    run = _plan(tmp_path)
    (mount,) = [b for a, b in itertools.pairwise(run.options) if a == "--mount"]
    assert mount.endswith(",target=/var/run/secrets/shop/jwt,readonly")
    key = tmp_path / "auth" / "jwt" / "private.pem"
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)  # the Secret's key, usable
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == 2048
    info = key.stat()
    if os.geteuid() == 0:
        assert stat.S_IMODE(info.st_mode) == 0o440 and info.st_gid == 10001  # defaultMode 0440, fsGroup
    else:
        assert stat.S_IMODE(info.st_mode) == 0o444


def test_cluster_addresses_point_at_the_target_containers_loopback_port() -> None:
    cluster = _cluster()
    ports = _ports(cluster)
    assert localize("http://auth:3000/.well-known/jwks.json", cluster, ports) == (
        f"http://127.0.0.1:{ports['auth'][3000]}/.well-known/jwks.json"
    )
    assert localize("product:9000", cluster, ports) == f"127.0.0.1:{ports['product'][9000]}"
    assert localize("http://frontend:80", cluster, ports) == f"http://127.0.0.1:{ports['frontend'][8080]}"
    fqdn = "http://order.ecommerce.svc.cluster.local:3000/cart"
    assert localize(fqdn, cluster, ports) == f"http://127.0.0.1:{ports['order'][3000]}/cart"
    outside = "https://payments.example.com:443/"
    assert localize(outside, cluster, ports) == outside
    with pytest.raises(Unsupported, match="no port 3001"):
        localize("http://auth:3001", cluster, ports)


def test_the_kubelets_service_links_are_set_for_every_service_with_a_cluster_ip(tmp_path: Path) -> None:
    run = _plan(tmp_path)
    assert run.env["PRODUCT_SERVICE_HOST"] == "127.0.0.1"
    assert run.env["PRODUCT_SERVICE_PORT_GRPC"] == str(_ports(_cluster())["product"][9000])  # same numbering
    assert run.env["AUTH_PORT"] == f"tcp://127.0.0.1:{run.listeners[3000]}"
    assert not any(k.startswith("MONGODB_") for k in run.env)  # headless: no variables


def test_the_downward_api_gives_the_pods_own_labels(tmp_path: Path) -> None:
    run = _plan(tmp_path, service="product")
    labels = _cluster().deployments["product"]["spec"]["template"]["metadata"]["labels"]
    assert run.env["VERSION"] == labels["version"]


def test_a_variable_left_unset_on_purpose_is_listed(tmp_path: Path) -> None:
    run = _plan(tmp_path, secrets=shop_secrets(), unset_env={"MONGO_URL": "in-memory store"})
    assert "MONGO_URL" not in run.env
    assert "MONGO_URL: unset (in-memory store)" in run.overrides


def _set(path: str, value: Any) -> Any:
    def change(pod: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = pod
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (_set("securityContext.runAsUser", 0), "runAsNonRoot with runAsUser 0"),
        (_set("containers.0.securityContext.privileged", True), "privileged"),
        (_set("securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "x"}), "Localhost"),
        (_set("volumes.0", {"name": "tmp", "hostPath": {"path": "/var/data"}}), "hostPath"),
        (_set("containers.0.livenessProbe", {"exec": {"command": ["true"]}}), "exec"),
        (_set("containers.0.envFrom", [{"configMapRef": {"name": "x"}}]), "envFrom"),
        (_set("containers.0.env", [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]),
         "spec.nodeName"),
        (_set("containers.0.env", [{"name": "U", "value": "http://auth:3001"}]), "no port 3001"),
    ],
)  # fmt: skip
def test_what_cannot_be_reproduced_is_refused(change: Any, refused: str, tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match=refused):
        _plan(tmp_path, change)


def test_a_missing_secret_stops_the_container_as_the_kubelet_would(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret, match="mongo-auth"):
        _plan(tmp_path, secrets=shop_secrets())
    without_volume_secret = {k: v for k, v in _secrets().items() if k != "auth-jwt"}
    with pytest.raises(MissingSecret, match="auth-jwt"):
        _plan(tmp_path, secrets=without_volume_secret)
