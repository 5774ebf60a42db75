"""Linkerd semantics the CRD schemas cannot see, checked on every Linkerd entry point of `make validate`.

Each checker takes rendered documents and returns findings ([] = fine). The rules are Linkerd's own
(github.com/linkerd/linkerd2 edge-26.6.3: the policy controller's inbound and outbound indexes);
tests/mesh/test_linkerd_static.py plants a mistake for each one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from scripts.k8svalidate.checks import on_docs
from scripts.k8svalidate.contract import architecture_callers
from scripts.k8svalidate.resources import Doc, find, index, name, ns, selects, workload_pods

ROUTE_ANNOTATION_PREFIXES = (
    "retry.linkerd.io/",
    "timeout.linkerd.io/",
    "balancer.linkerd.io/failure-accrual",
)
POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
# Server.spec.proxyProtocol -> the protocol column of docs/architecture.md's "Who calls whom"
CONTRACT_PROTOCOL = {"HTTP/1": "http", "HTTP/2": "http", "gRPC": "grpc", "opaque": "tcp"}


# ---------------------------------------------------------------- reading Linkerd resources


def http_routes(docs: Iterable[Doc]) -> list[Doc]:
    """HTTPRoutes of both API groups (Gateway API and policy.linkerd.io)."""
    docs = list(docs)
    return find(docs, "HTTPRoute", GATEWAY_GROUP) + find(docs, "HTTPRoute", POLICY_GROUP)


def all_routes(docs: Iterable[Doc]) -> list[Doc]:
    """HTTPRoutes of both groups and Gateway API GRPCRoutes."""
    docs = list(docs)
    return http_routes(docs) + find(docs, "GRPCRoute", GATEWAY_GROUP)


def is_service_ref(ref: Doc) -> bool:
    return ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")


def _identity_sa(identity: str) -> tuple[str, str] | None:
    """'<sa>.<ns>.serviceaccount.identity.linkerd.cluster.local' -> (ns, sa)."""
    m = re.fullmatch(
        r"([a-z0-9-]+)\.([a-z0-9-]+)\.serviceaccount\.identity\.linkerd\.cluster\.local", identity
    )
    return (m.group(2), m.group(1)) if m else None


def meshtls_identities(auth: Doc) -> set[tuple[str, str]]:
    """(namespace, ServiceAccount) pairs a MeshTLSAuthentication accepts."""
    out = set()
    for ref in auth["spec"].get("identityRefs", []):
        if ref.get("kind") == "ServiceAccount" and "name" in ref:
            out.add((ref.get("namespace", ns(auth)), ref["name"]))
    for ident in auth["spec"].get("identities", []):
        sa = _identity_sa(ident)
        if sa:
            out.add(sa)
    return out


def allowed_callers(docs: list[Doc]) -> dict[str, set[str]]:
    """Server name -> ServiceAccounts (or 'unauthenticated') its AuthorizationPolicies let in."""
    auths = index(docs, "MeshTLSAuthentication", POLICY_GROUP)
    out: dict[str, set[str]] = {}
    for pol in find(docs, "AuthorizationPolicy", POLICY_GROUP):
        if pol["spec"]["targetRef"]["kind"] != "Server":
            continue
        who = out.setdefault(pol["spec"]["targetRef"]["name"], set())
        for ref in pol["spec"]["requiredAuthenticationRefs"]:
            if ref["kind"] == "MeshTLSAuthentication":
                who |= {sa for _, sa in meshtls_identities(auths[(ns(pol), ref["name"])])}
            elif ref["kind"] == "NetworkAuthentication":
                who.add("unauthenticated")
    return out


def profile_services(docs: list[Doc]) -> dict[tuple[str, str], str]:
    """Services that get a ServiceProfile (directly, or made by linkerd-smi from a TrafficSplit)."""
    out = {}
    for sp in find(docs, "ServiceProfile"):
        m = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", name(sp))
        if m:
            out[(m.group(2), m.group(1))] = f"ServiceProfile {name(sp)}"
    for ts in find(docs, "TrafficSplit"):
        out[(ns(ts), ts["spec"]["service"])] = (
            f"TrafficSplit {name(ts)} (linkerd-smi writes a ServiceProfile)"
        )
    return out


# ---------------------------------------------------------------- checkers


def route_ref_errors(docs: list[Doc]) -> list[str]:
    """HTTP/GRPCRoute parentRefs and backendRefs must name real Services (and their ports) or Servers."""
    services = index(docs, "Service")
    servers = index(docs, "Server", POLICY_GROUP)
    errors = []

    def check_service(route: str, what: str, namespace: str, ref: Doc) -> None:
        svc = services.get((namespace, ref["name"]))
        if svc is None:
            errors.append(f"HTTPRoute {route}: {what} Service {ref['name']!r} does not exist")
            return
        ports = {p["port"] for p in svc["spec"].get("ports", [])}
        if "port" not in ref:
            errors.append(f"HTTPRoute {route}: {what} Service {ref['name']!r} needs a port")
        elif ref["port"] not in ports:
            errors.append(
                f"HTTPRoute {route}: {what} {ref['name']}:{ref['port']} is not a port of the Service"
            )

    for route in all_routes(docs):
        namespace, route_name = ns(route), name(route)
        for ref in route["spec"].get("parentRefs", []):
            if is_service_ref(ref):
                check_service(route_name, "parentRef", namespace, ref)
            elif ref.get("kind") == "Server" and ref.get("group") == POLICY_GROUP:
                if (namespace, ref["name"]) not in servers:
                    errors.append(f"HTTPRoute {route_name}: parentRef Server {ref['name']!r} does not exist")
            else:
                errors.append(
                    f"HTTPRoute {route_name}: parentRef {ref} is neither a Service nor a Linkerd Server"
                )
        for rule in route["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                if is_service_ref(ref):
                    check_service(route_name, "backendRef", namespace, ref)
                else:
                    errors.append(f"HTTPRoute {route_name}: backendRef {ref} is not a Service")
    return errors


def server_errors(docs: list[Doc]) -> list[str]:
    """Every Server selects at least one pod template, and its port is a container port of those pods."""
    errors = []
    pods = workload_pods(docs)
    for srv in find(docs, "Server", POLICY_GROUP):
        sel = srv["spec"].get("podSelector", {}).get("matchLabels", {})
        selected = [p for p in pods if p.ns == ns(srv) and selects(sel, p.labels)]
        if not selected:
            errors.append(f"Server {name(srv)}: podSelector {sel} matches no pod template")
        for pod in selected:
            if pod.port(srv["spec"]["port"]) is None:
                errors.append(f"Server {name(srv)}: port {srv['spec']['port']} not in pods {pod.labels}")
    return errors


def meshtls_errors(docs: list[Doc]) -> list[str]:
    """Every MeshTLSAuthentication names ServiceAccounts that exist (no wildcards, no typos)."""
    accounts = set(index(docs, "ServiceAccount"))
    errors = []
    for auth in find(docs, "MeshTLSAuthentication", POLICY_GROUP):
        for ref in auth["spec"].get("identityRefs", []):
            if ref.get("kind") != "ServiceAccount" or "name" not in ref:
                errors.append(
                    f"MeshTLSAuthentication {name(auth)}: identityRef {ref} is not one ServiceAccount"
                )
        for ident in auth["spec"].get("identities", []):
            if _identity_sa(ident) is None:
                errors.append(
                    f"MeshTLSAuthentication {name(auth)}: identity {ident!r} is not a ServiceAccount"
                )
        for namespace, sa in sorted(meshtls_identities(auth) - accounts):
            errors.append(
                f"MeshTLSAuthentication {name(auth)}: ServiceAccount {namespace}/{sa} does not exist"
            )
    return errors


def authorization_errors(docs: list[Doc]) -> list[str]:
    """AuthorizationPolicy targets and authentications exist; at most ONE MeshTLSAuthentication per policy.

    requiredAuthenticationRefs are ANDed: two MeshTLSAuthentications would demand two identities at once,
    which no client has. Several allowed callers belong in one MeshTLSAuthentication.
    """
    kinds: dict[str, set[tuple[str, str]]] = {
        "Server": set(index(docs, "Server", POLICY_GROUP)),
        "HTTPRoute": {(ns(r), name(r)) for r in http_routes(docs)},
        "GRPCRoute": {(ns(r), name(r)) for r in find(docs, "GRPCRoute", GATEWAY_GROUP)},
        "MeshTLSAuthentication": set(index(docs, "MeshTLSAuthentication", POLICY_GROUP)),
        "NetworkAuthentication": set(index(docs, "NetworkAuthentication", POLICY_GROUP)),
        "Namespace": {("default", name(n)) for n in find(docs, "Namespace")},
    }

    def exists(kind: str, ref: tuple[str, str]) -> bool:
        return ref in kinds.get(kind, set())

    errors = []
    for pol in find(docs, "AuthorizationPolicy", POLICY_GROUP):
        namespace, pol_name = ns(pol), name(pol)
        target = pol["spec"]["targetRef"]
        ref = ("default", target["name"]) if target["kind"] == "Namespace" else (namespace, target["name"])
        if not exists(target["kind"], ref):
            errors.append(
                f"AuthorizationPolicy {pol_name}: target {target['kind']} {target['name']!r} does not exist"
            )
        refs = pol["spec"].get("requiredAuthenticationRefs", [])
        for auth in refs:
            if not exists(auth["kind"], (auth.get("namespace", namespace), auth["name"])):
                errors.append(
                    f"AuthorizationPolicy {pol_name}: {auth['kind']} {auth['name']!r} does not exist"
                )
        mtls = [r["name"] for r in refs if r["kind"] == "MeshTLSAuthentication"]
        if len(mtls) > 1:
            errors.append(
                f"AuthorizationPolicy {pol_name}: {len(mtls)} MeshTLSAuthentications {mtls} are ANDed "
                "(no client can match); list all allowed ServiceAccounts in ONE MeshTLSAuthentication"
            )
    return errors


def server_route_kind_errors(docs: list[Doc]) -> list[str]:
    """Inbound routes must be of the kind the Server's protocol reads, or Linkerd silently ignores them.

    A `proxyProtocol: gRPC` Server takes GRPCRoutes only; HTTP Servers take HTTPRoutes only; an opaque Server
    has no routes at all (linkerd2 policy-controller, inbound index and API).
    """
    servers = find(docs, "Server", POLICY_GROUP)
    protocols = {(ns(s), name(s)): s["spec"].get("proxyProtocol", "unknown") for s in servers}
    errors = []
    for route in all_routes(docs):
        for ref in route["spec"].get("parentRefs", []):
            proto = protocols.get((ns(route), ref["name"])) if ref.get("kind") == "Server" else None
            if proto is None:
                continue
            wanted = {"gRPC": "GRPCRoute", "opaque": None, "TLS": None}.get(proto, "HTTPRoute")
            if route["kind"] != wanted:
                what = f"{route['kind']} {name(route)} on Server {ref['name']} ({proto})"
                errors.append(f"{what} is ignored by Linkerd; that Server takes {wanted or 'no routes'}")
    return errors


def mongodb_server_errors(docs: list[Doc]) -> list[str]:
    """MongoDB needs exactly one Server on 27017 with proxyProtocol opaque (no HTTP detection on its port)."""
    servers = [
        s
        for s in find(docs, "Server", POLICY_GROUP)
        if s["spec"].get("podSelector", {}).get("matchLabels", {}).get("app") == "mongodb"
    ]
    if len(servers) != 1:
        return [f"expected exactly one Server for MongoDB, found {len(servers)}"]
    srv = servers[0]
    errors = []
    if srv["spec"]["port"] not in (27017, "mongo"):
        errors.append(f"MongoDB Server {name(srv)} is on port {srv['spec']['port']}, not 27017")
    if srv["spec"].get("proxyProtocol") != "opaque":
        errors.append(f"MongoDB Server {name(srv)} has proxyProtocol {srv['spec'].get('proxyProtocol')!r}")
    return errors


def profile_conflicts(docs: list[Doc]) -> list[str]:
    """A ServiceProfile makes Linkerd ignore HTTPRoutes, retry/timeout and failure-accrual annotations."""
    profiled = profile_services(docs)
    errors = []
    for route in all_routes(docs):
        for ref in route["spec"].get("parentRefs", []):
            svc = (ns(route), ref["name"])
            if is_service_ref(ref) and svc in profiled:
                errors.append(
                    f"Service {svc[1]}: {profiled[svc]} and {route['kind']} {name(route)} (route ignored)"
                )
    for svc_doc in find(docs, "Service"):
        svc = (ns(svc_doc), name(svc_doc))
        annotations = svc_doc["metadata"].get("annotations") or {}
        used = sorted(a for a in annotations if a.startswith(ROUTE_ANNOTATION_PREFIXES))
        if svc in profiled and used:
            errors.append(f"Service {svc[1]}: {profiled[svc]} and annotations {used} (annotations ignored)")
    return errors


def contract_errors(docs: list[Doc]) -> list[str]:
    """Each Server lets in exactly the callers docs/architecture.md's "Who calls whom" names for its port,
    and every callee port of that table has a Server.
    """
    expected_by_port = architecture_callers()
    allowed = allowed_callers(docs)
    errors = []
    seen = set()
    for srv in find(docs, "Server", POLICY_GROUP):
        app = srv["spec"].get("podSelector", {}).get("matchLabels", {}).get("app")
        proto = CONTRACT_PROTOCOL.get(srv["spec"].get("proxyProtocol", ""), "http")
        seen.add((app, proto))
        callers = expected_by_port.get((str(app), proto), set())
        expected = {c if c == "unauthenticated" else f"{c}-sa" for c in callers}
        got = allowed.get(name(srv), set())
        if got != expected:
            errors.append(
                f"Server {name(srv)}: lets in {sorted(got)}, docs/architecture.md says {sorted(expected)}"
            )
    for app, proto in sorted(set(expected_by_port) - seen):
        errors.append(f"{app} ({proto}) is a callee in docs/architecture.md but has no Server")
    for app, proto in sorted(seen - set(expected_by_port), key=str):
        errors.append(f"{app} ({proto}) has a Server but is no callee in docs/architecture.md")
    return errors


def _has_servers(docs: list[Doc]) -> bool:
    return bool(find(docs, "Server", POLICY_GROUP))


CHECKERS = [
    on_docs(route_ref_errors, "linkerd"),
    on_docs(server_errors, "linkerd"),
    on_docs(meshtls_errors, "linkerd"),
    on_docs(authorization_errors, "linkerd"),
    on_docs(server_route_kind_errors, "linkerd"),
    on_docs(profile_conflicts, "linkerd"),
    on_docs(mongodb_server_errors, "linkerd", when=_has_servers),
    on_docs(contract_errors, "linkerd", when=_has_servers),
]
