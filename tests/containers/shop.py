"""The eight images running together as the kubelet would run them (tests/containers/kubelet.py), on the
host's network, with the shop's Secrets generated here (as scripts/secrets.sh does in the cluster)."""

from __future__ import annotations

import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.topology import SERVICE_CLIENTS, SERVICES
from tests.containers.engine import Cgroup, Docker, wait_until
from tests.containers.kubelet import Cluster, Probe, RunPlan, allocate_ports, plan


class Database(Protocol):
    description: str
    unset_env: frozenset[str]

    def prepare(self, work_dir: Path) -> None: ...
    def secrets(self, services: list[str]) -> dict[str, dict[str, str]]: ...
    def run_options(self, image_env: dict[str, str]) -> tuple[list[str], dict[str, str]]: ...


def shop_secrets() -> dict[str, dict[str, str]]:
    """The Secrets of the manifests other than the database's, made as scripts/secrets.sh makes them: the JWT
    signing key, the session secret, the service clients' secrets (auth's `clients` and one key per client).
    A Secret the manifests gain and this lacks fails the test (kubelet.MissingSecret)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    clients = {client: secrets.token_hex(32) for client in SERVICE_CLIENTS}
    return {
        "auth-jwt": {"private.pem": pem},
        "frontend-session": {"secret": secrets.token_hex(32)},
        "service-clients": {**clients, "clients": "".join(f"{c}={s}," for c, s in clients.items())},
    }


@dataclass
class Container:
    name: str  # docker container name
    plan: RunPlan
    image: str
    pid: int = 0
    cgroup: Cgroup | None = None

    @property
    def http(self) -> str:
        """Base URL of the container's `http` port."""
        port = next(iter(self.plan.listeners))
        return self.plan.url(port)


@dataclass
class Shop:
    docker: Docker
    cluster: Cluster
    images: dict[str, str]
    database: Database
    work_dir: Path
    free_port: Callable[[], int]
    prefix: str
    containers: dict[str, Container] = field(default_factory=dict)

    def start(self) -> None:
        ports = allocate_ports(self.cluster, self.free_port)
        with_db = [s for s in SERVICES if _uses_env(self.cluster, s, "MONGO_URL")]
        provided = {**shop_secrets(), **self.database.secrets(with_db)}
        self.database.prepare(self.work_dir)
        for service in SERVICES:
            if service not in self.cluster.deployments:
                raise LookupError(f"k8s/base renders no Deployment {service}")
            unset = dict.fromkeys(self.database.unset_env, self.database.description)
            run = plan(
                self.cluster,
                service,
                ports=ports,
                secrets=provided,
                volume_dir=self.work_dir / "volumes",
                unset_env=unset,
            )
            image = self.images[service]
            options, env = list(run.options), dict(run.env)
            if service in with_db:
                extra_options, extra_env = self.database.run_options(self.docker.image_env(image))
                options += extra_options
                env.update(extra_env)
                run.overrides += [f"{k}: image default -> {v}" for k, v in extra_env.items()]
            name = f"{self.prefix}-{service}"
            self.docker.run_detached(name, image, options, env, run.args)
            self.containers[service] = Container(name, run, image)

    def wait_ready(self, timeout: float = 180) -> None:
        """Until every container passes its startup and readiness probes, as the kubelet would wait."""
        for service, container in self.containers.items():
            for probe in container.plan.probes:
                if probe.kind in ("startup", "readiness"):
                    try:
                        wait_until(lambda p=probe: probe_passes(p), timeout)
                    except TimeoutError as exc:
                        state = self.docker.inspect(container.name)["State"]
                        raise AssertionError(
                            f"{service}: {probe.kind} probe {probe.url} {exc}; state {state['Status']} "
                            f"(exit {state['ExitCode']}, OOMKilled {state['OOMKilled']}):\n"
                            + self.docker.logs(container.name)
                        ) from None
            container.pid = int(self.docker.inspect(container.name)["State"]["Pid"])
            container.cgroup = Cgroup(container.pid)

    def state(self, service: str) -> dict[str, Any]:
        state: dict[str, Any] = self.docker.inspect(self.containers[service].name)["State"]
        return state

    def stop(self) -> None:
        self.docker.remove(*(c.name for c in self.containers.values()))


def _uses_env(cluster: Cluster, deployment: str, name: str) -> bool:
    return any(e["name"] == name for e in cluster.container(deployment).get("env", []))


def probe_passes(probe: Probe) -> bool:
    """One probe as the kubelet runs it: HTTP 200-399, or gRPC health SERVING."""
    if probe.handler == "httpGet":
        try:
            with urllib.request.urlopen(probe.url, timeout=2) as response:
                return 200 <= int(response.status) < 400
        except OSError:
            return False
    if probe.handler == "grpc":
        return grpc_health(probe.url, probe.grpc_service) == "SERVING"
    raise NotImplementedError(probe.handler)


def grpc_health(target: str, service: str = "") -> str:
    """The status `grpc.health.v1.Health/Check` answers for `service` ("" = the whole server)."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError as exc:
            return f"error {exc.code().name}"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
