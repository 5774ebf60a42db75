"""Istio semantics the CRD schemas cannot see, checked on every Istio entry point of `make validate`.

Each checker takes rendered documents and returns findings ([] = fine). The rules are Istio's own
(istio.io/istio 1.30.3: pilot's routing, the analyzers of pkg/config/analysis, pkg/config/validation);
tests/mesh/test_istio_static.py plants a mistake for each one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from functools import cache

from scripts.k8svalidate.checks import Checker, Target, on_docs
from scripts.k8svalidate.contract import intended_protocol, service_calls
from scripts.k8svalidate.istio_validation import deprecated_field_errors, ignored_setting_errors
from scripts.k8svalidate.render import REPO_ROOT
from scripts.k8svalidate.resources import Doc, find, name, ns, workload_pods

ISTIO_DIR = REPO_ROOT / "mesh" / "istio"
INGRESS_SA = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
# The ingress gateway istioctl installs (mesh/istio/install/istio-kind.yaml): namespace and pod labels.
INGRESS_NS = "istio-system"
INGRESS_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
HTTP_ONLY_FIELDS = ("methods", "notMethods", "paths", "notPaths", "hosts", "notHosts")
HTTP_ONLY_SOURCE = ("requestPrincipals", "notRequestPrincipals")
# pkg/config/protocol/instance.go Parse (lowercase name -> protocol.Instance)
ISTIO_PROTOCOLS = {
    "tcp": "TCP",
    "udp": "UDP",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}
UNSUPPORTED = "UnsupportedProtocol"
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"}
WELL_KNOWN_TCP_PORTS = {25, 53, 3306, 27017}  # pkg/config/kube/conversion.go wellKnownPorts


# ---------------------------------------------------------------- reading Istio resources


def fqdn(host: str, namespace: str) -> str:
    """Istio's reading of a short host name: relative to the namespace of the resource."""
    if host == "*" or "." in host:
        return host if host.count(".") != 1 else f"{host}.svc.cluster.local"
    return f"{host}.{namespace}.svc.cluster.local"


def service_hosts(docs: Iterable[Doc]) -> dict[str, Doc]:
    """<name>.<namespace>.svc.cluster.local -> Service."""
    return {f"{name(s)}.{ns(s)}.svc.cluster.local": s for s in find(docs, "Service")}


def serviceentry_hosts(docs: Iterable[Doc]) -> set[str]:
    return {h for se in find(docs, "ServiceEntry") for h in se["spec"].get("hosts", [])}


def pod_labels(docs: Iterable[Doc]) -> list[tuple[str, dict[str, str]]]:
    """(namespace, labels) of every pod template."""
    return [(p.ns, p.labels) for p in workload_pods(docs)]


def http_routes(vs: Doc) -> list[Doc]:
    return list(vs["spec"].get("http", []))


def destinations(vs: Doc) -> list[Doc]:
    """Every HTTP route destination of a VirtualService."""
    return [r["destination"] for route in http_routes(vs) for r in route.get("route", [])]


def is_mesh_bound(vs: Doc) -> bool:
    gateways = vs["spec"].get("gateways", [])
    return not gateways or "mesh" in gateways


# ---------------------------------------------------------------- checkers


def vs_host_errors(docs: list[Doc]) -> list[str]:
    """Every VirtualService destination is a real Service (or a ServiceEntry host)."""
    known = set(service_hosts(docs)) | serviceentry_hosts(docs)
    errs = []
    for vs in find(docs, "VirtualService"):
        for dest in destinations(vs):
            if fqdn(dest["host"], ns(vs)) not in known and dest["host"] not in known:
                errs.append(f"VirtualService {name(vs)}: destination {dest['host']} is no Service")
    return errs


def subset_errors(docs: list[Doc]) -> list[str]:
    """Every subset exists in a DestinationRule whose labels (plus the Service selector) match a pod."""
    services = service_hosts(docs)
    drs = {fqdn(dr["spec"]["host"], ns(dr)): dr for dr in find(docs, "DestinationRule")}
    errs = []
    for vs in find(docs, "VirtualService"):
        for dest in destinations(vs):
            if "subset" not in dest:
                continue
            host = fqdn(dest["host"], ns(vs))
            dr = drs.get(host)
            subsets = {s["name"]: s for s in (dr or {}).get("spec", {}).get("subsets", [])}
            if dr is None or dest["subset"] not in subsets:
                errs.append(
                    f"VirtualService {name(vs)}: subset {dest['subset']} of {host} is in no DestinationRule"
                )
                continue
            svc = services.get(host)
            want = {**(svc["spec"].get("selector", {}) if svc else {}), **subsets[dest["subset"]]["labels"]}
            host_ns = host.split(".")[1]
            if not any(pns == host_ns and want.items() <= lbl.items() for pns, lbl in pod_labels(docs)):
                errs.append(
                    f"DestinationRule {name(dr)}: subset {dest['subset']} {want} matches no pod template"
                )
    return errs


def duplicate_host_errors(docs: list[Doc]) -> list[str]:
    """No two VirtualServices for one mesh host, nor for one host on the same gateway (IST0109)."""
    owners: dict[tuple[str, str], str] = {}
    errs = []
    for vs in find(docs, "VirtualService"):
        bindings = ["mesh"] if is_mesh_bound(vs) else []
        bindings += [g for g in vs["spec"].get("gateways", []) if g != "mesh"]
        for host in vs["spec"]["hosts"]:
            for binding in bindings:
                owner = (binding, fqdn(host, ns(vs)))
                if owner in owners and owners[owner] != name(vs):
                    errs.append(
                        f"host {owner[1]} on {binding}: VirtualServices {owners[owner]} and {name(vs)}"
                    )
                owners[owner] = name(vs)
    return errs


def destination_rule_errors(docs: list[Doc]) -> list[str]:
    """One DestinationRule per host."""
    seen: dict[str, str] = {}
    errs = []
    for dr in find(docs, "DestinationRule"):
        host = fqdn(dr["spec"]["host"], ns(dr))
        if host in seen:
            errs.append(f"host {host}: DestinationRules {seen[host]} and {name(dr)}")
        seen[host] = name(dr)
    return errs


def principal_errors(docs: list[Doc]) -> list[str]:
    """Every principal is an existing ServiceAccount (cluster.local/ns/<ns>/sa/<name>) or the gateway."""
    sas = {f"cluster.local/ns/{ns(sa)}/sa/{name(sa)}" for sa in find(docs, "ServiceAccount")}
    errs = []
    for ap in find(docs, "AuthorizationPolicy", "security.istio.io"):
        for rule in ap["spec"].get("rules", []):
            for f in rule.get("from", []):
                for p in f.get("source", {}).get("principals", []):
                    if p not in sas and p != INGRESS_SA:
                        errs.append(f"AuthorizationPolicy {name(ap)}: principal {p} is no ServiceAccount")
    return errs


def rule_shape_errors(docs: list[Doc]) -> list[str]:
    """ALLOW rules have `from` AND `to` in one rule (the lesson split them, allowing everyone)."""
    errs = []
    for ap in find(docs, "AuthorizationPolicy", "security.istio.io"):
        if ap["spec"].get("action", "ALLOW") != "ALLOW":
            continue
        for i, rule in enumerate(ap["spec"].get("rules", [])):
            if not rule.get("from") or not rule.get("to"):
                errs.append(f"AuthorizationPolicy {name(ap)} rule {i}: needs both `from` and `to`")
    return errs


def tcp_policy_errors(docs: list[Doc]) -> list[str]:
    """Policies on TCP workloads (ports named tcp-*: MongoDB) use no HTTP-only fields."""
    tcp_selectors = [
        s["spec"]["selector"]
        for s in find(docs, "Service")
        if s["spec"].get("selector") and all(p.get("name", "").startswith("tcp") for p in s["spec"]["ports"])
    ]
    errs = []
    for ap in find(docs, "AuthorizationPolicy", "security.istio.io"):
        match = ap["spec"].get("selector", {}).get("matchLabels", {})
        if not any(sel.items() <= match.items() for sel in tcp_selectors):
            continue
        for rule in ap["spec"].get("rules", []):
            ops = [t.get("operation", {}) for t in rule.get("to", [])]
            srcs = [f.get("source", {}) for f in rule.get("from", [])]
            bad = [k for o in ops for k in o if k in HTTP_ONLY_FIELDS]
            bad += [k for s in srcs for k in s if k in HTTP_ONLY_SOURCE]
            bad += [c["key"] for c in rule.get("when", []) if c["key"].startswith("request.")]
            if bad:
                errs.append(
                    f"AuthorizationPolicy {name(ap)} on a TCP workload uses HTTP-only {sorted(set(bad))}"
                )
    return errs


def fault_errors(docs: list[Doc]) -> list[str]:
    """Fault percentages are explicit percents in (0, 100]; no fault next to retries/timeout."""
    errs = []
    for vs in find(docs, "VirtualService"):
        for route in http_routes(vs):
            fault = route.get("fault")
            if not fault:
                continue
            for kind, f in fault.items():
                value = f.get("percentage", {}).get("value")
                if value is None or not 0 < value <= 100:
                    errs.append(f"VirtualService {name(vs)} {kind}: percentage {value} not in (0, 100]")
                elif value < 1:
                    errs.append(f"VirtualService {name(vs)} {kind}: {value} % is less than 1 in 100")
            if "retries" in route or "timeout" in route:
                errs.append(f"VirtualService {name(vs)}: fault injection with retries/timeout on one route")
    return errs


def tls_secret_errors(docs: list[Doc], secrets: set[tuple[str, str]]) -> list[str]:
    """Every Gateway credentialName is created (pre-apply) in the namespace of the gateway workload.

    `secrets` are the (namespace, name) pairs the labs' pre-apply.sh create (pre_apply_secrets).
    """
    errs = []
    for gw in find(docs, "Gateway", "networking.istio.io"):
        if not gw["spec"]["selector"].items() <= INGRESS_LABELS.items():
            errs.append(f"Gateway {name(gw)}: selector {gw['spec']['selector']} is not the ingress gateway")
        for server in gw["spec"]["servers"]:
            if not server["port"].get("name"):
                errs.append(f"Gateway {name(gw)}: server port without name")
            cred = server.get("tls", {}).get("credentialName")
            if cred and (INGRESS_NS, cred) not in secrets:
                errs.append(f"Gateway {name(gw)}: Secret {cred} is not created in {INGRESS_NS}")
    return errs


def header_errors(docs: list[Doc]) -> list[str]:
    """Header match names are lowercase (Envoy lowercases them)."""
    errs = []
    for vs in find(docs, "VirtualService"):
        for route in http_routes(vs):
            for m in route.get("match", []):
                errs += [
                    f"VirtualService {name(vs)}: header {h}" for h in m.get("headers", {}) if h != h.lower()
                ]
    return errs


def gateway_ref_errors(docs: list[Doc]) -> list[str]:
    """Every gateway a VirtualService binds to exists (or is `mesh`)."""
    gateways = {f"{ns(g)}/{name(g)}" for g in find(docs, "Gateway", "networking.istio.io")}
    errs = []
    for vs in find(docs, "VirtualService"):
        for ref in vs["spec"].get("gateways", []):
            full = ref if "/" in ref else f"{ns(vs)}/{ref}"
            if ref != "mesh" and full not in gateways:
                errs.append(f"VirtualService {name(vs)}: gateway {ref} does not exist")
    return errs


def gateway_host_errors(docs: list[Doc]) -> list[str]:
    """Hosts of a gateway-bound VirtualService are names clients send as Host.

    Istio reads a short name (no dot) as `<name>.<namespace>.svc.cluster.local`, also at a gateway: a
    VirtualService for `localhost` never matches a browser's `Host: localhost`. A short name is only
    meaningful when it is a Service of that namespace (then clients can send its full name).
    """
    services = set(service_hosts(docs))
    errs = []
    for vs in find(docs, "VirtualService"):
        if not [g for g in vs["spec"].get("gateways", []) if g != "mesh"]:
            continue
        for host in vs["spec"]["hosts"]:
            if host != "*" and "." not in host and fqdn(host, ns(vs)) not in services:
                errs.append(
                    f"VirtualService {name(vs)}: gateway host {host} means {fqdn(host, ns(vs))}, no Service"
                )
    return errs


def istio_protocol(port: Doc) -> str:
    """The protocol Istio derives for a Service port (pkg/config/kube/conversion.go ConvertProtocol, 1.30.3).

    UDP ports are UDP; else `appProtocol` if set (the kubernetes.io/h2c, ws, wss names mapped), else the port
    name; `grpc-web...` is GRPC-Web; otherwise the part before the first `-` parsed case-insensitively.
    Unknown names give `UnsupportedProtocol` (Istio sniffs the protocol), except on the well-known ports
    25, 53, 3306 and 27017, which are TCP.
    """
    if port.get("protocol") == "UDP":
        return "UDP"
    name_ = str(port.get("name", ""))
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        name_ = str(app_protocol)
        standard = {"kubernetes.io/h2c": "HTTP2", "kubernetes.io/ws": "HTTP", "kubernetes.io/wss": "HTTPS"}
        if name_ in standard:
            return standard[name_]
    if name_[: len("grpc-web")].lower() == "grpc-web":
        return "GRPC-Web"
    prefix = name_.split("-", 1)[0].lower()
    parsed = ISTIO_PROTOCOLS.get(prefix, UNSUPPORTED)
    if parsed == UNSUPPORTED and port.get("port") in WELL_KNOWN_TCP_PORTS:
        return "TCP"
    return parsed


def is_http_or_sniffed(protocol: str) -> bool:
    """HTTP route rules apply to the port (protocol.Instance.IsHTTPOrSniffed)."""
    return protocol in HTTP_PROTOCOLS or protocol == UNSUPPORTED


def protocol_errors(docs: list[Doc]) -> list[str]:
    """Every Service port gets the protocol we intend, computed the way Istio does (istio_protocol).

    The shop's ports (contract.intended_protocol): HTTP for the REST ports, GRPC for the Inventory port, TCP
    for MongoDB. Any other Service (a lab's) must at least name a protocol Istio knows: an unknown one makes
    Istio sniff each connection, and server-first protocols then stall.
    """
    errs = []
    for svc in find(docs, "Service"):
        if (svc.get("spec") or {}).get("type") == "ExternalName":
            continue
        for port in svc["spec"].get("ports", []):
            got = istio_protocol(port)
            want = intended_protocol(svc, port)
            how = f"name {port.get('name')!r}" + (
                f", appProtocol {port['appProtocol']!r}" if "appProtocol" in port else ""
            )
            if want is not None and got != want:
                errs.append(
                    f"Service {name(svc)} port {port.get('port')} ({how}): Istio reads {got}, not {want}"
                )
            elif want is None and got == UNSUPPORTED:
                errs.append(
                    f"Service {name(svc)} port {port.get('port')} ({how}): no protocol Istio knows, so it "
                    "sniffs every connection; set appProtocol or a name prefix (http-, grpc-, tcp-, ...)"
                )
    return errs


def _service_ports(docs: list[Doc]) -> dict[str, list[Doc]]:
    """Host -> its ports ({number, protocol}) for Services (fqdn) and ServiceEntries (their hosts)."""
    out: dict[str, list[Doc]] = {
        h: [{"number": p.get("port"), "protocol": istio_protocol(p)} for p in s["spec"].get("ports", [])]
        for h, s in service_hosts(docs).items()
    }
    for se in find(docs, "ServiceEntry"):
        ports = [
            {"number": p.get("number"), "protocol": p.get("protocol", "TCP")}
            for p in se["spec"].get("ports", [])
        ]
        for host in se["spec"].get("hosts", []):
            out[host] = ports
    return out


def _all_destinations(vs: Doc) -> list[tuple[str, Doc]]:
    """(where, destination) of every route and mirror destination of a VirtualService (http, tls, tcp)."""
    out = []
    for kind in ("http", "tls", "tcp"):
        for i, rule in enumerate(vs["spec"].get(kind, [])):
            label = f"{kind}[{rule.get('name', i)}]"
            out += [(label, r["destination"]) for r in rule.get("route", []) if "destination" in r]
            if "mirror" in rule:
                out.append((f"{label}.mirror", rule["mirror"]))
            out += [
                (f"{label}.mirrors", m["destination"]) for m in rule.get("mirrors", []) if "destination" in m
            ]
    return out


def _matches_port(rule: Doc, port: int) -> tuple[bool, bool]:
    """(some traffic to `port` can reach the rule, ALL traffic to `port` that gets there stops at it)."""
    matches = rule.get("match") or [{}]
    reach = [m for m in matches if m.get("port") in (None, port)]
    catch_all = any(set(m) <= {"port", "name"} for m in reach)
    return bool(reach), catch_all


def destination_port_errors(docs: list[Doc]) -> list[str]:
    """Destinations to a Service with several ports name a port of it, and traffic keeps its port.

    - No port on a destination whose host has several ports is IST0112 (istioctl analyze, error): at a
      gateway Istio then routes to the gateway's listener port (`outbound|80||product...`), a cluster that
      does not exist, and answers 503 (pilot route.GetDestinationCluster).
    - A port the host does not have is IST0101 (host:port not found).
    - In a mesh-bound VirtualService, HTTP rules apply to every HTTP port of the host: a rule that sends to
      port P must not be reachable by traffic to another port Q of the same host (gRPC on 9000 sent to the
      REST port 3000). Rules for Q come first, matched with `port: Q`.
    """
    ports_of = _service_ports(docs)
    errs = []
    for vs in find(docs, "VirtualService"):
        for where, dest in _all_destinations(vs):
            host = fqdn(dest["host"], ns(vs))
            ports = ports_of.get(host, ports_of.get(dest["host"]))
            if ports is None:
                continue  # vs_host_errors reports it
            numbers = [p["number"] for p in ports]
            wanted = (dest.get("port") or {}).get("number")
            if wanted is None and len(ports) > 1:
                errs.append(
                    f"VirtualService {name(vs)} {where}: destination {dest['host']} has ports {numbers}, "
                    "name one (IST0112; at a gateway Istio would route to its own listener port)"
                )
            elif wanted is not None and wanted not in numbers:
                errs.append(
                    f"VirtualService {name(vs)} {where}: {dest['host']}:{wanted} is no port of it {numbers}"
                )
        if is_mesh_bound(vs):
            errs += _port_crossing_errors(vs, ports_of)
    return errs


def _port_crossing_errors(vs: Doc, ports_of: dict[str, list[Doc]]) -> list[str]:
    errs = []
    for host in vs["spec"]["hosts"]:
        full = fqdn(host, ns(vs))
        all_ports = [p["number"] for p in ports_of.get(full, [])]
        http_ports = [p["number"] for p in ports_of.get(full, []) if is_http_or_sniffed(p["protocol"])]
        for incoming in http_ports if len(http_ports) > 1 else []:
            for i, rule in enumerate(http_routes(vs)):
                reach, catch_all = _matches_port(rule, incoming)
                if not reach:
                    continue
                for r in rule.get("route", []):
                    dest = r.get("destination", {})
                    sent = (dest.get("port") or {}).get("number")
                    # (a port the host lacks is reported once, above)
                    if fqdn(dest.get("host", ""), ns(vs)) == full and sent in all_ports and sent != incoming:
                        where = f"VirtualService {name(vs)} http[{rule.get('name', i)}]"
                        errs.append(
                            f"{where}: traffic to {host}:{incoming} reaches this rule and is sent to port "
                            f"{sent}; match `port: {incoming}` in an earlier rule"
                        )
                if catch_all:
                    break
    return errs


# ---------------------------------------------------------------- authorization vs the services' calls


def _path_match(pattern: str, path: str) -> bool:
    """Istio's path matching: exact, `prefix*`, `*suffix` or `*`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def allowed(docs: list[Doc], sa: str, app: str, method: str, path: str, port: int | None) -> bool:
    """Whether the ALLOW policies selecting `app` let ServiceAccount `sa` (in ecommerce) make this call."""
    principal = f"cluster.local/ns/ecommerce/sa/{sa}"
    policies = [
        p
        for p in find(docs, "AuthorizationPolicy", "security.istio.io")
        if p["spec"].get("selector", {}).get("matchLabels") == {"app": app}
    ]
    for policy in policies:
        for rule in policy["spec"].get("rules", []):
            if not any(principal in f.get("source", {}).get("principals", []) for f in rule.get("from", [])):
                continue
            for to in rule.get("to", []):
                op = to.get("operation", {})
                if method not in op.get("methods", [method]):
                    continue
                if port is not None and "ports" in op and str(port) not in op["ports"]:
                    continue
                if any(_path_match(p, path) for p in op.get("paths", ["*"])):
                    return True
    return False


def missing_calls(docs: list[Doc]) -> list[str]:
    """Calls the services' code really makes that the AuthorizationPolicies would deny."""
    return [
        f"{sa} -> {app} {m} {p}"
        for sa, app, m, p, port in service_calls()
        if not allowed(docs, sa, app, m, p, port)
    ]


# ---------------------------------------------------------------- what the labs' scripts create


@cache
def pre_apply_secrets(lab: str) -> frozenset[tuple[str, str]]:
    """(namespace, name) of the Secrets a lab's pre-apply.sh creates, from its DRY_RUN=1 output."""
    script = ISTIO_DIR / "labs" / lab / "pre-apply.sh"
    if not script.exists():
        return frozenset()
    env = {**os.environ, "DRY_RUN": "1"}
    out = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=True).stdout
    found = re.findall(r"kubectl --context \S+ -n (\S+) create secret tls (\S+)", out)
    return frozenset((n, s) for n, s in found)


def _tls_secrets(target: Target) -> list[str]:
    secrets = {s for lab in target.labs for s in pre_apply_secrets(lab)}
    return tls_secret_errors(target.docs, secrets)


def _has_authorization(docs: list[Doc]) -> bool:
    return bool(find(docs, "AuthorizationPolicy", "security.istio.io"))


SEMANTIC_CHECKS = [
    vs_host_errors,
    subset_errors,
    duplicate_host_errors,
    destination_rule_errors,
    principal_errors,
    rule_shape_errors,
    tcp_policy_errors,
    fault_errors,
    header_errors,
    gateway_ref_errors,
    gateway_host_errors,
    destination_port_errors,
    protocol_errors,
    deprecated_field_errors,
    ignored_setting_errors,
]

CHECKERS = [
    *(on_docs(c, "istio") for c in SEMANTIC_CHECKS),
    Checker("istio.tls_secret_errors", _tls_secrets, "istio"),
    on_docs(missing_calls, "istio", when=_has_authorization),
]
