"""Linkerd semantics the CRD schemas cannot see, checked on every Linkerd entry point of `make validate`.

Each checker takes rendered documents and returns findings ([] = fine). The rules are Linkerd's own
(github.com/linkerd/linkerd2 edge-26.6.3: the policy controller's inbound and outbound indexes);
tests/mesh/test_linkerd_static.py plants a mistake for each one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from scripts.k8svalidate.checks import on_docs
from scripts.k8svalidate.contract import architecture_callers
from scripts.k8svalidate.resources import Doc, Pods, find, index, name, ns, selects, workload_pods

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


# Policy resources Linkerd's own installers create, which a repo manifest may name but never contains.
MESH_OWNED = {
    # viz's Prometheus admin port (viz/charts/linkerd-viz/templates/prometheus-policy.yaml): the shop's
    # Grafana is admitted to it (mesh/linkerd/grafana/prometheus-authorization.yaml).
    ("Server", ("linkerd-viz", "prometheus-admin")),
}


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
        "ServiceAccount": {(ns(a), name(a)) for a in find(docs, "ServiceAccount")},
    }

    def exists(kind: str, ref: tuple[str, str]) -> bool:
        return ref in kinds.get(kind, set()) or (kind, ref) in MESH_OWNED

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


# ---------------------------------------------------------------- kubelet probes under a Server


@dataclass(frozen=True)
class Probe:
    """A kubelet probe of a container, as the request the kubelet sends (unauthenticated, from the node)."""

    where: str  # "<workload> <container> readinessProbe"
    kind: str  # httpGet | grpc
    port: int
    method: str  # GET for httpGet, POST for gRPC
    path: str  # the HTTP path (gRPC: /grpc.health.v1.Health/Check)


def pod_probes(pods: Pods) -> list[Probe]:
    """The httpGet and grpc probes of a pod template (tcpSocket and exec probes carry no HTTP request)."""
    out = []
    for c in pods.containers:
        for field in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(field) or {}
            where = f"{pods.workload['kind']} {name(pods.workload)} container {c.get('name')} {field}"
            if "httpGet" in probe:
                port = pods.port(probe["httpGet"].get("port"))
                number = port["containerPort"] if port else probe["httpGet"].get("port")
                out.append(Probe(where, "httpGet", number, "GET", probe["httpGet"].get("path", "/")))
            elif "grpc" in probe:
                out.append(
                    Probe(where, "grpc", probe["grpc"]["port"], "POST", "/grpc.health.v1.Health/Check")
                )
    return out


def _server_port(server: Doc, pods: Pods) -> int | None:
    port = server["spec"]["port"]
    found = pods.port(port)
    return int(found["containerPort"]) if found else (port if isinstance(port, int) else None)


def _http_rule_matches(rule: Doc, method: str, path: str) -> bool:
    matches = rule.get("matches") or [{}]
    for m in matches:
        if m.get("headers") or m.get("queryParams"):
            continue  # the kubelet sends no such headers or parameters
        if m.get("method", method) != method:
            continue
        want = m.get("path") or {"type": "PathPrefix", "value": "/"}
        kind, value = want.get("type", "PathPrefix"), want.get("value", "/")
        if kind == "Exact" and path == value:
            return True
        if kind == "PathPrefix" and (path == value or path.startswith(value.rstrip("/") + "/")):
            return True
        if kind == "RegularExpression" and re.fullmatch(value, path):
            return True
    return False


def _grpc_rule_matches(rule: Doc, path: str) -> bool:
    service, _, method = path.strip("/").partition("/")
    for m in rule.get("matches") or [{}]:
        want = m.get("method") or {}
        if want.get("service", service) == service and want.get("method", method) == method:
            return True
    return False


def _network_only_targets(docs: list[Doc]) -> set[tuple[str, str]]:
    """(kind, name) of the Servers and routes an AuthorizationPolicy opens to unauthenticated networks.

    requiredAuthenticationRefs are ANDed: a policy that also requires a MeshTLSAuthentication lets no
    kubelet in (it has no mesh identity).
    """
    out = set()
    for pol in find(docs, "AuthorizationPolicy", POLICY_GROUP):
        refs = pol["spec"].get("requiredAuthenticationRefs") or []
        if refs and all(r["kind"] == "NetworkAuthentication" for r in refs):
            out.add((pol["spec"]["targetRef"]["kind"], pol["spec"]["targetRef"]["name"]))
    return out


def probe_authorization_errors(docs: list[Doc]) -> list[str]:
    """Every kubelet probe on a port a Server covers gets through Linkerd's authorization.

    The policy controller (linkerd2 edge-26.6.3, policy-controller/k8s/index/src/inbound/index.rs) adds a
    "probe" route that lets the probe networks GET the pod's httpGet probe paths, but ONLY on an HTTP Server
    no HTTPRoute (policy.linkerd.io or gateway.networking.k8s.io) is attached to. A gRPC Server gets no probe
    route at all (it reads GRPCRoutes only), and nor does a gRPC probe. Otherwise the probe needs a route that
    matches it (or no routes at all: the default route) and an AuthorizationPolicy on that route or the
    Server that asks only for a NetworkAuthentication: route and Server authorizations are ORed, but the
    authentications inside one policy are ANDed.
    """
    open_to_kubelet = _network_only_targets(docs)
    pods = workload_pods(docs)
    errors = []
    for srv in find(docs, "Server", POLICY_GROUP):
        if srv["spec"].get("proxyProtocol") in ("opaque", "TLS"):
            continue  # no HTTP: the proxy accepts the connection itself, tcpSocket probes see it open
        sel = srv["spec"].get("podSelector", {}).get("matchLabels", {})
        for pod in (p for p in pods if p.ns == ns(srv) and selects(sel, p.labels)):
            for probe in pod_probes(pod):
                if probe.port == _server_port(srv, pod):
                    problem = _probe_problem(probe, srv, docs, open_to_kubelet)
                    if problem:
                        where = f"({probe.kind} {probe.path} on Server {name(srv)})"
                        errors.append(f"{probe.where} {where}: {problem}")
    return errors


def _probe_problem(
    probe: Probe, srv: Doc, docs: list[Doc], open_to_kubelet: set[tuple[str, str]]
) -> str | None:
    """Why Linkerd would refuse this probe on this Server, or None."""
    grpc = srv["spec"].get("proxyProtocol") == "gRPC"
    route_kind = "GRPCRoute" if grpc else "HTTPRoute"
    candidates = find(docs, "GRPCRoute", GATEWAY_GROUP) if grpc else http_routes(docs)
    routes = [
        r
        for r in candidates
        if any(
            ref.get("kind") == "Server" and ref.get("name") == name(srv) for ref in r["spec"]["parentRefs"]
        )
    ]
    server_open = ("Server", name(srv)) in open_to_kubelet
    if grpc and probe.kind == "httpGet":
        return "a gRPC Server takes no HTTP probes; probe over gRPC"
    if not routes:
        if probe.kind == "httpGet" or server_open:
            return None  # Linkerd's automatic probe route, or the default route of an open Server
        return (
            f"Linkerd authorizes no {probe.kind} probe by itself; add a {route_kind} for it and an "
            "AuthorizationPolicy with a NetworkAuthentication"
        )
    matching = [
        r
        for r in routes
        for rule in r["spec"].get("rules") or [{}]
        if (_grpc_rule_matches(rule, probe.path) if grpc else _http_rule_matches(rule, "GET", probe.path))
    ]
    if not matching:
        attached = sorted(name(r) for r in routes)
        return f"{route_kind}s {attached} attached: Linkerd stops authorizing probes itself; none matches"
    if server_open or any((r["kind"], name(r)) in open_to_kubelet for r in matching):
        return None
    return (
        f"{route_kind} {name(matching[0])} matches it, but no AuthorizationPolicy with only a "
        "NetworkAuthentication opens that route (or the Server) to the kubelet"
    )


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
    on_docs(probe_authorization_errors, "linkerd", when=_has_servers),
    on_docs(mongodb_server_errors, "linkerd", when=_has_servers),
    on_docs(contract_errors, "linkerd", when=_has_servers),
]
