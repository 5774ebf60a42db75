"""Who calls whom: the shop's calls as docs/architecture.md states them and as the services' code makes them.

Both meshes' authorization labs are checked against these (istio.py, linkerd.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scripts.k8svalidate.render import REPO_ROOT
from services import topology

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"

# (caller ServiceAccount, callee app, method, path with {params} as x1, port or None for the HTTP port)
Call = tuple[str, str, str, str, int | None]


def architecture_callers(path: Path = ARCHITECTURE) -> dict[tuple[str, str], set[str]]:
    """(callee, 'http'|'grpc'|'tcp') -> callers, from the "Who calls whom" table of docs/architecture.md.

    Callers are service names; the ingress row is 'unauthenticated' (traffic from outside the mesh).
    """
    out: dict[tuple[str, str], set[str]] = {}
    in_table = False
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            in_table = line.startswith("## Who calls whom")
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table or len(cells) != 3 or cells[0] in ("caller", "") or set(cells[0]) <= {"-"}:
            continue
        callers_cell, callee, what = cells
        callers = (
            {"unauthenticated"}
            if callers_cell.startswith("ingress")
            else {c.strip() for c in callers_cell.split(",")}
        )
        protocols = []
        if callee == "mongodb":
            protocols.append("tcp")
        if "gRPC" in what:
            protocols.append("grpc")
        if re.search(r"\b(GET|POST|PUT|DELETE)\b", what):
            protocols.append("http")
        for proto in protocols:
            out.setdefault((callee, proto), set()).update(callers)
    return out


def intended_protocol(service: dict[str, Any], port: dict[str, Any]) -> str | None:
    """The protocol a shop Service port carries (docs/architecture.md), as Istio names it; None for others.

    MongoDB: TCP. The product Service's gRPC port (services/topology.env GRPC_PORT): GRPC. Every other port
    of a shop service (their REST APIs and the frontend): HTTP.
    """
    app = ((service.get("spec") or {}).get("selector") or {}).get("app")
    if app == "mongodb":
        return "TCP"
    if app == topology.GRPC_SERVICE and port.get("port") == topology.GRPC_PORT:
        return "GRPC"
    if app in topology.SERVICES:
        return "HTTP"
    return None


def service_calls(root: Path = REPO_ROOT) -> list[Call]:
    """Every call found in the services' client code: the frontend's and order's HTTP calls, order's gRPC,
    and the token request of every service with its own identity (SERVICE_CLIENTS)."""
    calls: list[Call] = []
    svc = "|".join(s for s in topology.SERVICES if s != "frontend")
    frontend = "".join((root / "services" / "frontend" / f).read_text() for f in ("clients.py", "api.py"))
    for callee, method, path in re.findall(
        rf'"({svc})",\s*"(GET|POST|PUT|DELETE)",\s*f?"(/[^"]*)"', frontend
    ):
        calls.append(("frontend-sa", callee, method, path, None))
    order = (root / "services" / "order" / "clients.py").read_text()
    for m in re.finditer(r'f"\{self\.settings\.(\w+)_url\}(/[^"]*)"', order):
        # the call the URL is written in (`self.http.post(f"...")`), else the next one (`url = f"..."`)
        inline = re.search(r"self\.http\.(get|post|put|delete)\($", order[: m.start()])
        method = inline or re.search(r"self\.http\.(get|post|put|delete)\(", order[m.start() :])
        if not method:
            raise ValueError(f"services/order/clients.py: no HTTP method found for {m.group(0)}")
        calls.append(("order-sa", m.group(1), method.group(1).upper(), m.group(2), None))
    identity = (root / "services" / "kit" / "service_identity.py").read_text()
    token_path = re.search(r'^TOKEN_PATH = "(/[^"]+)"', identity, re.M)
    if not token_path:
        raise ValueError("services/kit/service_identity.py has no TOKEN_PATH")
    for client in topology.SERVICE_CLIENTS:  # services that get their own token at auth
        calls.append((f"{client}-sa", "auth", "POST", token_path.group(1), None))
    proto = (root / "services" / "protos" / "inventory.proto").read_text()
    package = re.search(r"^package ([\w.]+);", proto, re.M)
    if not package:
        raise ValueError("services/protos/inventory.proto has no package")
    for rpc in re.findall(r"^\s*rpc (\w+)\(", proto, re.M):
        calls.append(("order-sa", "product", "POST", f"/{package.group(1)}.Inventory/{rpc}", 9000))
    return [(sa, app, meth, re.sub(r"\{[^}]*\}", "x1", path), port) for sa, app, meth, path, port in calls]
