"""The shop's topology, read from `services/topology.env` (the one list of services; bash and make read
the same file).

- `SERVICES`: the service names, frontend first (`services/<name>/`, `k8s/base/<name>.yaml`).
- `WITH_DATABASE`: the services that own a MongoDB database (every one except `WITHOUT_DATABASE`).
- `SERVICE_CLIENTS`: the services with an identity of their own at auth (OAuth 2.0 client credentials).
- `dev_port(name)`, `dev_url(name)`: where a service listens under `make dev` (127.0.0.1).
- `GRPC_SERVICE`, `GRPC_PORT`, `dev_grpc_target()`: the gRPC Inventory API.
- `DEV_FERRETDB_PORT`: FerretDB under `make dev STORE=ferretdb`.
- `CLUSTER_NAME`, `NAMESPACE`: the kind cluster and the Kubernetes namespace of the shop.

Raises `KeyError` at import when the file lacks a key, `ValueError` when a port is not a number.
"""

from __future__ import annotations

from pathlib import Path

FILE = Path(__file__).with_name("topology.env")


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines as a dict; blank lines and `#` comments are skipped, values are not expanded."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


_VALUES = read_env_file(FILE)

CLUSTER_NAME = _VALUES["CLUSTER_NAME"]
NAMESPACE = _VALUES["NAMESPACE"]
SERVICES: tuple[str, ...] = tuple(_VALUES["SERVICES"].split())
WITHOUT_DATABASE: tuple[str, ...] = tuple(_VALUES["WITHOUT_DATABASE"].split())
SERVICE_CLIENTS: tuple[str, ...] = tuple(_VALUES["SERVICE_CLIENTS"].split())
WITH_DATABASE: tuple[str, ...] = tuple(s for s in SERVICES if s not in WITHOUT_DATABASE)
DEV_PORT_BASE = int(_VALUES["DEV_PORT_BASE"])
GRPC_SERVICE = _VALUES["GRPC_SERVICE"]
GRPC_PORT = int(_VALUES["GRPC_PORT"])
DEV_FERRETDB_PORT = int(_VALUES["DEV_FERRETDB_PORT"])


def dev_port(service: str) -> int:
    """The HTTP port of `service` under `make dev` (8080 for frontend, ...); ValueError for an unknown one."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: not in SERVICES of {FILE}")
    return DEV_PORT_BASE + SERVICES.index(service)


def dev_url(service: str) -> str:
    """`http://127.0.0.1:<dev port>` of `service`."""
    return f"http://127.0.0.1:{dev_port(service)}"


def dev_grpc_target() -> str:
    """Where the gRPC Inventory API listens under `make dev` (`127.0.0.1:9000`)."""
    return f"127.0.0.1:{GRPC_PORT}"
