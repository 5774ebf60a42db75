"""Static checks of the Linkerd overlay and labs: strict schemas plus Linkerd-specific semantics.

The check functions take rendered documents and return human-readable errors (empty = fine); every check
is also run on a planted mistake to prove it can fail.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT, crossref_errors, render, validate_docs

Doc = dict[str, Any]

ROUTE_ANNOTATION_PREFIXES = (
    "retry.linkerd.io/",
    "timeout.linkerd.io/",
    "balancer.linkerd.io/failure-accrual",
)
POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def _ns(doc: Doc) -> str:
    return str(doc.get("metadata", {}).get("namespace", "default"))


def _name(doc: Doc) -> str:
    return str(doc["metadata"]["name"])


def _group(doc: Doc) -> str:
    api = str(doc.get("apiVersion", ""))
    return api.split("/")[0] if "/" in api else ""


def find(docs: Iterable[Doc], kind: str, group: str | None = None) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind and (group is None or _group(d) == group)]


def _index(docs: Iterable[Doc], kind: str, group: str | None = None) -> dict[tuple[str, str], Doc]:
    return {(_ns(d), _name(d)): d for d in find(docs, kind, group)}


def pod_templates(docs: Iterable[Doc]) -> list[Doc]:
    """(namespace, labels, spec) of every workload's pod template."""
    out = []
    for d in docs:
        if d.get("kind") in WORKLOAD_KINDS:
            tpl = d["spec"]["template"]
            out.append({"ns": _ns(d), "labels": tpl["metadata"].get("labels", {}), "spec": tpl["spec"]})
    return out


def _selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match_labels.items())


def http_routes(docs: Iterable[Doc]) -> list[Doc]:
    return find(docs, "HTTPRoute", GATEWAY_GROUP) + find(docs, "HTTPRoute", POLICY_GROUP)


def all_routes(docs: Iterable[Doc]) -> list[Doc]:
    """HTTPRoutes of both groups and Gateway API GRPCRoutes."""
    docs = list(docs)
    return http_routes(docs) + find(docs, "GRPCRoute", GATEWAY_GROUP)


def _is_service_ref(ref: Doc) -> bool:
    return ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")


def route_ref_errors(docs: list[Doc]) -> list[str]:
    """HTTP/GRPCRoute parentRefs and backendRefs must name real Services (and their ports) or Servers."""
    services = _index(docs, "Service")
    servers = _index(docs, "Server", POLICY_GROUP)
    errors = []

    def check_service(route: str, what: str, ns: str, ref: Doc) -> None:
        svc = services.get((ns, ref["name"]))
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
        ns, name = _ns(route), _name(route)
        for ref in route["spec"].get("parentRefs", []):
            if _is_service_ref(ref):
                check_service(name, "parentRef", ns, ref)
            elif ref.get("kind") == "Server" and ref.get("group") == POLICY_GROUP:
                if (ns, ref["name"]) not in servers:
                    errors.append(f"HTTPRoute {name}: parentRef Server {ref['name']!r} does not exist")
            else:
                errors.append(f"HTTPRoute {name}: parentRef {ref} is neither a Service nor a Linkerd Server")
        for rule in route["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                if _is_service_ref(ref):
                    check_service(name, "backendRef", ns, ref)
                else:
                    errors.append(f"HTTPRoute {name}: backendRef {ref} is not a Service")
    return errors


def server_errors(docs: list[Doc]) -> list[str]:
    """Every Server selects at least one pod template, and its port is a container port of those pods."""
    errors = []
    templates = pod_templates(docs)
    for srv in find(docs, "Server", POLICY_GROUP):
        sel = srv["spec"].get("podSelector", {}).get("matchLabels", {})
        pods = [t for t in templates if t["ns"] == _ns(srv) and _selects(sel, t["labels"])]
        if not pods:
            errors.append(f"Server {_name(srv)}: podSelector {sel} matches no pod template")
        for pod in pods:
            ports = {
                v
                for c in pod["spec"].get("containers", [])
                for p in c.get("ports", [])
                for v in (p.get("containerPort"), p.get("name"))
            }
            if srv["spec"]["port"] not in ports:
                errors.append(f"Server {_name(srv)}: port {srv['spec']['port']} not in pods {pod['labels']}")
    return errors


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
            out.add((ref.get("namespace", _ns(auth)), ref["name"]))
    for ident in auth["spec"].get("identities", []):
        sa = _identity_sa(ident)
        if sa:
            out.add(sa)
    return out


def meshtls_errors(docs: list[Doc]) -> list[str]:
    """Every MeshTLSAuthentication names ServiceAccounts that exist (no wildcards, no typos)."""
    accounts = set(_index(docs, "ServiceAccount"))
    errors = []
    for auth in find(docs, "MeshTLSAuthentication", POLICY_GROUP):
        for ref in auth["spec"].get("identityRefs", []):
            if ref.get("kind") != "ServiceAccount" or "name" not in ref:
                errors.append(
                    f"MeshTLSAuthentication {_name(auth)}: identityRef {ref} is not one ServiceAccount"
                )
        for ident in auth["spec"].get("identities", []):
            if _identity_sa(ident) is None:
                errors.append(
                    f"MeshTLSAuthentication {_name(auth)}: identity {ident!r} is not a ServiceAccount"
                )
        for ns, sa in sorted(meshtls_identities(auth) - accounts):
            errors.append(f"MeshTLSAuthentication {_name(auth)}: ServiceAccount {ns}/{sa} does not exist")
    return errors


def authorization_errors(docs: list[Doc]) -> list[str]:
    """AuthorizationPolicy targets and authentications exist; at most ONE MeshTLSAuthentication per policy.

    requiredAuthenticationRefs are ANDed: two MeshTLSAuthentications would demand two identities at once,
    which no client has. Several allowed callers belong in one MeshTLSAuthentication.
    """
    kinds = {
        "Server": _index(docs, "Server", POLICY_GROUP),
        "HTTPRoute": {(_ns(r), _name(r)) for r in http_routes(docs)},
        "GRPCRoute": {(_ns(r), _name(r)) for r in find(docs, "GRPCRoute", GATEWAY_GROUP)},
        "MeshTLSAuthentication": _index(docs, "MeshTLSAuthentication", POLICY_GROUP),
        "NetworkAuthentication": _index(docs, "NetworkAuthentication", POLICY_GROUP),
        "Namespace": {("default", _name(n)) for n in find(docs, "Namespace")},
    }
    errors = []
    for pol in find(docs, "AuthorizationPolicy", POLICY_GROUP):
        ns, name = _ns(pol), _name(pol)
        target = pol["spec"]["targetRef"]
        key = ("default", target["name"]) if target["kind"] == "Namespace" else (ns, target["name"])
        if key not in kinds.get(target["kind"], {}):
            errors.append(
                f"AuthorizationPolicy {name}: target {target['kind']} {target['name']!r} does not exist"
            )
        refs = pol["spec"].get("requiredAuthenticationRefs", [])
        for ref in refs:
            if (ref.get("namespace", ns), ref["name"]) not in kinds.get(ref["kind"], {}):
                errors.append(f"AuthorizationPolicy {name}: {ref['kind']} {ref['name']!r} does not exist")
        mtls = [r["name"] for r in refs if r["kind"] == "MeshTLSAuthentication"]
        if len(mtls) > 1:
            errors.append(
                f"AuthorizationPolicy {name}: {len(mtls)} MeshTLSAuthentications {mtls} are ANDed "
                "(no client can match); list all allowed ServiceAccounts in ONE MeshTLSAuthentication"
            )
    return errors


def server_route_kind_errors(docs: list[Doc]) -> list[str]:
    """Inbound routes must be of the kind the Server's protocol reads, or Linkerd silently ignores them.

    A `proxyProtocol: gRPC` Server takes GRPCRoutes only; HTTP Servers take HTTPRoutes only; an opaque Server
    has no routes at all (linkerd2 policy-controller, inbound index and API).
    """
    servers = find(docs, "Server", POLICY_GROUP)
    protocols = {(_ns(s), _name(s)): s["spec"].get("proxyProtocol", "unknown") for s in servers}
    errors = []
    for route in all_routes(docs):
        for ref in route["spec"].get("parentRefs", []):
            proto = protocols.get((_ns(route), ref["name"])) if ref.get("kind") == "Server" else None
            if proto is None:
                continue
            wanted = {"gRPC": "GRPCRoute", "opaque": None, "TLS": None}.get(proto, "HTTPRoute")
            if route["kind"] != wanted:
                what = f"{route['kind']} {_name(route)} on Server {ref['name']} ({proto})"
                errors.append(f"{what} is ignored by Linkerd; that Server takes {wanted or 'no routes'}")
    return errors


def allowed_callers(docs: list[Doc]) -> dict[str, set[str]]:
    """Server name -> ServiceAccounts (or 'unauthenticated') its AuthorizationPolicies let in."""
    auths = _index(docs, "MeshTLSAuthentication", POLICY_GROUP)
    out: dict[str, set[str]] = {}
    for pol in find(docs, "AuthorizationPolicy", POLICY_GROUP):
        if pol["spec"]["targetRef"]["kind"] != "Server":
            continue
        who = out.setdefault(pol["spec"]["targetRef"]["name"], set())
        for ref in pol["spec"]["requiredAuthenticationRefs"]:
            if ref["kind"] == "MeshTLSAuthentication":
                who |= {sa for _, sa in meshtls_identities(auths[(_ns(pol), ref["name"])])}
            elif ref["kind"] == "NetworkAuthentication":
                who.add("unauthenticated")
    return out


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
        errors.append(f"MongoDB Server {_name(srv)} is on port {srv['spec']['port']}, not 27017")
    if srv["spec"].get("proxyProtocol") != "opaque":
        errors.append(f"MongoDB Server {_name(srv)} has proxyProtocol {srv['spec'].get('proxyProtocol')!r}")
    return errors


def profile_services(docs: list[Doc]) -> dict[tuple[str, str], str]:
    """Services that get a ServiceProfile (directly, or made by linkerd-smi from a TrafficSplit)."""
    out = {}
    for sp in find(docs, "ServiceProfile"):
        m = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", _name(sp))
        if m:
            out[(m.group(2), m.group(1))] = f"ServiceProfile {_name(sp)}"
    for ts in find(docs, "TrafficSplit"):
        out[(_ns(ts), ts["spec"]["service"])] = (
            f"TrafficSplit {_name(ts)} (linkerd-smi writes a ServiceProfile)"
        )
    return out


def profile_conflicts(docs: list[Doc]) -> list[str]:
    """A ServiceProfile makes Linkerd ignore HTTPRoutes, retry/timeout and failure-accrual annotations."""
    profiled = profile_services(docs)
    errors = []
    for route in all_routes(docs):
        for ref in route["spec"].get("parentRefs", []):
            key = (_ns(route), ref["name"])
            if _is_service_ref(ref) and key in profiled:
                errors.append(
                    f"Service {key[1]}: {profiled[key]} and {route['kind']} {_name(route)} (route ignored)"
                )
    for svc in find(docs, "Service"):
        key = (_ns(svc), _name(svc))
        annotations = svc["metadata"].get("annotations") or {}
        used = sorted(a for a in annotations if a.startswith(ROUTE_ANNOTATION_PREFIXES))
        if key in profiled and used:
            errors.append(f"Service {key[1]}: {profiled[key]} and annotations {used} (annotations ignored)")
    return errors


def lab_label_errors(lab: str, lab_docs: list[Doc], overlay_docs: list[Doc]) -> list[str]:
    """Every resource a lab ADDS carries `lab: <lab>` (lab-reset deletes by that label)."""

    def key(d: Doc) -> tuple[str, str, str]:
        return (str(d["kind"]), _ns(d), _name(d))

    base = {key(d) for d in overlay_docs}
    return [
        f"{d['kind']} {_name(d)} has no label lab: {lab}"
        for d in lab_docs
        if key(d) not in base and (d["metadata"].get("labels") or {}).get("lab") != lab
    ]


def architecture_callers(path: Path) -> dict[tuple[str, str], set[str]]:
    """(callee, 'http'|'grpc'|'tcp') -> callers, from the "Who calls whom" table of docs/architecture.md."""
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


# ---------------------------------------------------------------------------------------------- the tests

MESH = REPO_ROOT / "mesh" / "linkerd"
LABS = sorted(p.parent.name for p in (MESH / "labs").glob("*/kustomization.yaml"))
STANDALONE = {ln.strip() for ln in (MESH / "labs" / "standalone.txt").read_text().splitlines() if ln.strip()}
COMBINABLE = [lab for lab in LABS if lab not in STANDALONE]
FIXTURES = Path(__file__).parent / "fixtures" / "linkerd_lesson"
_CACHE: dict[tuple[str, ...], list[Doc]] = {}


def rendered(*labs: str) -> list[Doc]:
    """The overlay (no labs) or the overlay plus the given lab Components; cached, returns copies."""
    if labs not in _CACHE:
        _CACHE[labs] = render(
            [f"mesh/linkerd/labs/{lab}" for lab in labs] if labs else "mesh/linkerd/overlay"
        )
    return copy.deepcopy(_CACHE[labs])


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


ALL_CHECKS = (
    validate_docs,
    crossref_errors,
    route_ref_errors,
    server_errors,
    meshtls_errors,
    authorization_errors,
    server_route_kind_errors,
    profile_conflicts,
)


def test_lab_set_matches_the_istio_names_plus_legacy() -> None:
    assert set(LABS) == {"canary", "ab-testing", "resilience", "security", "legacy"}
    assert {"legacy"} == STANDALONE


@pytest.mark.parametrize(
    "labs", [(), *[(lab,) for lab in LABS], tuple(COMBINABLE)], ids=lambda x: "+".join(x)
)
def test_every_entry_point_is_strictly_valid_and_consistent(labs: tuple[str, ...]) -> None:
    docs = rendered(*labs)
    for check in ALL_CHECKS:
        assert check(docs) == [], f"{check.__name__} on {labs or 'overlay'}"


def test_overlay_enables_injection_and_opaque_mongodb() -> None:
    ns = one(rendered(), "Namespace", "ecommerce")["metadata"]["annotations"]
    assert ns["linkerd.io/inject"] == "enabled"
    assert ns["config.linkerd.io/opaque-ports"] == "27017"


@pytest.mark.parametrize("lab", LABS)
def test_every_added_resource_carries_its_lab_label(lab: str) -> None:
    assert lab_label_errors(lab, rendered(lab), rendered()) == []


def test_planted_unknown_fields_in_httproute_and_server_are_rejected() -> None:
    route = one(rendered("canary"), "HTTPRoute", "product-canary")
    route["spec"]["rules"][-1]["backendRefs"][0]["wieght"] = 90
    server = one(rendered("security"), "Server", "mongodb")
    server["spec"]["protocol"] = "opaque"
    errors = validate_docs([route, server])
    assert len(errors) == 2, errors
    assert "wieght" in errors[0] and "HTTPRoute" in errors[0]
    assert "protocol" in errors[1] and "Server" in errors[1]


def test_lesson_serviceprofile_is_rejected_and_the_fixed_one_accepted() -> None:
    lesson = [d for d in yaml.safe_load_all((FIXTURES / "service-profile.yaml").read_text()) if d]
    errors = validate_docs(lesson)
    assert len(errors) == 1 and "retryBudget" in errors[0] and ".spec.routes.1" in errors[0], errors
    fixed = one(rendered("legacy"), "ServiceProfile", "user.ecommerce.svc.cluster.local")
    assert validate_docs([fixed]) == []
    assert fixed["spec"]["retryBudget"] == {"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"}
    assert all("retryBudget" not in route for route in fixed["spec"]["routes"])


def test_legacy_ships_the_labelled_serviceprofile_the_adaptor_fills() -> None:
    # linkerd-smi's adaptor only empties dstOverrides when a TrafficSplit goes: a ServiceProfile it created
    # would outlive `make lab-reset` (which deletes by the `lab` label) and switch off the canary HTTPRoute.
    docs = rendered("legacy")
    profiles = {_name(sp): sp for sp in find(docs, "ServiceProfile")}
    splits = find(docs, "TrafficSplit")
    assert splits
    for ts in splits:
        sp = profiles[f"{ts['spec']['service']}.{_ns(ts)}.svc.cluster.local"]
        assert sp["metadata"]["labels"]["lab"] == "legacy"
        assert "dstOverrides" not in sp["spec"], "the adaptor owns dstOverrides"


def test_lesson_trafficsplit_is_still_served_by_linkerd_smi() -> None:
    lesson = [d for d in yaml.safe_load_all((FIXTURES / "traffic-split.yaml").read_text()) if d]
    assert validate_docs(lesson) == []
    ts = one(rendered("legacy"), "TrafficSplit", "product-split")
    assert ts["apiVersion"] == lesson[0]["apiVersion"] == "split.smi-spec.io/v1alpha1"
    assert [(b["service"], b["weight"]) for b in ts["spec"]["backends"]] == [
        ("product-stable", 90),
        ("product-canary", 10),
    ]


def test_canary_route_splits_90_10_and_header_or_cookie_goes_to_canary() -> None:
    docs = rendered("canary")
    route = one(docs, "HTTPRoute", "product-canary")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "product", "port": 3000}]
    header_rule, cookie_rule, default_rule = route["spec"]["rules"]
    assert header_rule["matches"] == [{"headers": [{"name": "canary", "value": "true"}]}]
    assert [b["name"] for b in header_rule["backendRefs"]] == ["product-canary"]
    # The footer's "Try the canary build" cookie anywhere in the Cookie header (full or partial regex match).
    (cookie,) = cookie_rule["matches"][0]["headers"]
    assert (cookie["name"], cookie["type"]) == ("cookie", "RegularExpression")
    for header in (
        "canary=true",
        "session=abc; canary=true",
        "canary=true; theme=dark",
        "a=1; canary=true; b=2",
    ):
        assert re.fullmatch(cookie["value"], header) and re.search(cookie["value"], header), header
    for header in ("canary=false", "mycanary=true", "session=abc; canary=truex", ""):
        assert not re.search(cookie["value"], header), header
    assert [b["name"] for b in cookie_rule["backendRefs"]] == ["product-canary"]
    assert "matches" not in default_rule
    assert {b["name"]: b["weight"] for b in default_rule["backendRefs"]} == {
        "product-stable": 90,
        "product-canary": 10,
    }
    # Each per-version Service selects exactly the pods of its version.
    versions = {t["labels"]["version"] for t in pod_templates(docs) if t["labels"].get("app") == "product"}
    assert versions == {"stable", "canary"}
    for version in versions:
        assert one(docs, "Service", f"product-{version}")["spec"]["selector"] == {
            "app": "product",
            "version": version,
        }


def test_ab_route_matches_mobile_user_agent_then_group_header_like_the_lesson() -> None:
    docs = rendered("ab-testing")
    rules = one(docs, "HTTPRoute", "frontend-ab")["spec"]["rules"]
    # Same order as the lesson's VirtualService (and the Istio lab): equally specific rules win in list order.
    assert rules[0]["matches"][0]["headers"] == [
        {"name": "user-agent", "type": "RegularExpression", "value": ".*Mobile.*"}
    ]
    assert rules[0]["backendRefs"][0]["name"] == "frontend-mobile-optimized"
    assert rules[1]["matches"][0]["headers"] == [{"name": "x-user-group", "value": "beta"}]
    assert rules[1]["backendRefs"][0]["name"] == "frontend-beta-features"
    assert "matches" not in rules[2] and rules[2]["backendRefs"][0]["name"] == "frontend-stable"
    assert re.fullmatch(rules[0]["matches"][0]["headers"][0]["value"], "Mozilla/5.0 (iPhone) Mobile/15E148")
    for variant in ("stable", "beta-features", "mobile-optimized"):
        sel = one(docs, "Service", f"frontend-{variant}")["spec"]["selector"]
        assert any(_selects(sel, t["labels"]) for t in pod_templates(docs)), variant


def test_resilience_annotations_and_error_injector_share() -> None:
    docs = rendered("resilience")
    user = one(docs, "Service", "user")["metadata"]["annotations"]
    assert user == {
        "retry.linkerd.io/http": "5xx",
        "retry.linkerd.io/limit": "3",
        "retry.linkerd.io/timeout": "2s",
        "timeout.linkerd.io/request": "10s",
    }
    payment = one(docs, "Service", "payment")["metadata"]["annotations"]
    assert payment["balancer.linkerd.io/failure-accrual"] == "consecutive"
    assert int(payment["balancer.linkerd.io/failure-accrual-consecutive-max-failures"]) == 3
    weights = {
        b["name"]: b["weight"]
        for b in one(docs, "HTTPRoute", "payment-fault-injection")["spec"]["rules"][0]["backendRefs"]
    }
    assert weights == {"payment": 90, "error-injector": 10}
    conf = one(docs, "ConfigMap", "error-injector")["data"]["default.conf"]
    assert "return 500" in conf and "listen 8080" in conf


def test_security_default_policy_and_opaque_mongodb() -> None:
    docs = rendered("security")
    ns = one(docs, "Namespace", "ecommerce")["metadata"]["annotations"]
    assert ns["config.linkerd.io/default-inbound-policy"] == "all-authenticated"
    assert mongodb_server_errors(docs) == []
    frontend = one(docs, "NetworkAuthentication", "anywhere")
    assert {n["cidr"] for n in frontend["spec"]["networks"]} == {"0.0.0.0/0", "::/0"}


def test_security_allows_exactly_the_callers_of_the_architecture_contract() -> None:
    docs = rendered("security")
    expected_by_port = architecture_callers(REPO_ROOT / "docs" / "architecture.md")
    allowed = allowed_callers(docs)
    proto_of = {"HTTP/1": "http", "gRPC": "grpc", "opaque": "tcp"}
    seen = set()
    for srv in find(docs, "Server", POLICY_GROUP):
        app = srv["spec"]["podSelector"]["matchLabels"]["app"]
        key = (app, proto_of[srv["spec"]["proxyProtocol"]])
        seen.add(key)
        expected = {c if c == "unauthenticated" else f"{c}-sa" for c in expected_by_port[key]}
        assert allowed.get(srv["metadata"]["name"]) == expected, srv["metadata"]["name"]
    assert seen == set(expected_by_port), "every callee port of the contract has a Server"


def test_every_api_container_port_has_a_server() -> None:
    docs = rendered("security")
    covered = {
        (s["spec"]["podSelector"]["matchLabels"]["app"], s["spec"]["port"])
        for s in find(docs, "Server", POLICY_GROUP)
    }
    for tpl in pod_templates(docs):
        for c in tpl["spec"]["containers"]:
            for p in c.get("ports", []):
                assert (tpl["labels"]["app"], p["containerPort"]) in covered, (tpl["labels"], p)


# ------------------------------------------------------------------ the semantic checks can fail


def test_route_check_catches_unknown_backend_and_wrong_port() -> None:
    docs = rendered("canary")
    route = one(docs, "HTTPRoute", "product-canary")
    route["spec"]["rules"][-1]["backendRefs"][1]["name"] = "product-v2"
    route["spec"]["parentRefs"][0]["port"] = 80
    errors = route_ref_errors(docs)
    assert any("'product-v2' does not exist" in e for e in errors), errors
    assert any("product:80 is not a port" in e for e in errors), errors


def test_meshtls_check_catches_unknown_service_account() -> None:
    docs = rendered("security")
    auth = one(docs, "MeshTLSAuthentication", "payment-http-callers")
    auth["spec"]["identityRefs"].append({"kind": "ServiceAccount", "name": "backend-sa"})
    assert meshtls_errors(docs) == [
        "MeshTLSAuthentication payment-http-callers: ServiceAccount ecommerce/backend-sa does not exist"
    ]


def test_authorization_check_catches_several_meshtls_refs() -> None:
    docs = rendered("security")
    pol = one(docs, "AuthorizationPolicy", "shipping-http-callers")
    pol["spec"]["requiredAuthenticationRefs"].append(
        {"group": POLICY_GROUP, "kind": "MeshTLSAuthentication", "name": "order-http-callers"}
    )
    errors = authorization_errors(docs)
    assert len(errors) == 1 and "are ANDed" in errors[0], errors


def test_route_kind_check_catches_an_httproute_on_a_grpc_server() -> None:
    # What the first version of this lab did: Linkerd never sent these routes, so the kubelet's gRPC probe was
    # refused and product never started under the security lab.
    docs = rendered("security")
    route = one(docs, "GRPCRoute", "product-grpc-health")
    route["kind"] = "HTTPRoute"
    route["spec"]["rules"] = [
        {"matches": [{"path": {"type": "Exact", "value": "/grpc.health.v1.Health/Check"}}]}
    ]
    assert server_route_kind_errors(docs) == [
        "HTTPRoute product-grpc-health on Server product-grpc (gRPC) is ignored by Linkerd; "
        "that Server takes GRPCRoute"
    ]
    one(docs, "Server", "product-grpc")["spec"]["proxyProtocol"] = "HTTP/2"
    assert server_route_kind_errors(docs) == [
        "GRPCRoute product-grpc-inventory on Server product-grpc (HTTP/2) is ignored by Linkerd; "
        "that Server takes HTTPRoute"
    ]


def test_grpc_probe_route_is_open_to_the_kubelet_and_inventory_only_to_order() -> None:
    docs = rendered("security")
    probe = next(t for t in pod_templates(docs) if t["labels"] == {"app": "product", "version": "stable"})
    (container,) = probe["spec"]["containers"]
    assert container["startupProbe"]["grpc"]["port"] == 9000, "the probe this route exists for"
    health = one(docs, "GRPCRoute", "product-grpc-health")["spec"]["rules"][0]["matches"]
    assert health == [{"method": {"service": "grpc.health.v1.Health", "method": "Check"}}]
    policy = one(docs, "AuthorizationPolicy", "product-grpc-health-probes")["spec"]
    assert policy["targetRef"] == {"group": GATEWAY_GROUP, "kind": "GRPCRoute", "name": "product-grpc-health"}
    assert [r["kind"] for r in policy["requiredAuthenticationRefs"]] == ["NetworkAuthentication"]
    assert allowed_callers(docs)["product-grpc"] == {"order-sa"}


def test_mongodb_check_catches_a_non_opaque_server() -> None:
    docs = rendered("security")
    one(docs, "Server", "mongodb")["spec"]["proxyProtocol"] = "unknown"
    assert mongodb_server_errors(docs) == ["MongoDB Server mongodb has proxyProtocol 'unknown'"]
    assert mongodb_server_errors(rendered()) == ["expected exactly one Server for MongoDB, found 0"]


@pytest.mark.parametrize("other", ["canary", "resilience"])
def test_legacy_with_canary_or_resilience_is_detected_as_forbidden(other: str) -> None:
    docs = rendered("legacy") + rendered(other)
    errors = profile_conflicts(docs)
    expected = {"canary": "HTTPRoute product-canary", "resilience": "retry.linkerd.io/http"}[other]
    assert any(expected in e for e in errors), errors
    assert "legacy" in STANDALONE and other in COMBINABLE


def test_linkerd_yaml_passes_yamllint() -> None:
    paths = [str(MESH), str(FIXTURES)]
    proc = subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-c", str(REPO_ROOT / ".yamllint"), *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_has_a_guide_with_its_verify_command_and_a_live_test(lab: str) -> None:
    guide = (REPO_ROOT / "docs" / "linkerd" / f"{lab}.md").read_text()
    assert f"make verify MESH=linkerd LAB={lab}" in guide
    assert f"make lab LAB={lab} MESH=linkerd" in guide
    live = REPO_ROOT / "tests" / "cluster" / "linkerd" / f"test_{lab.replace('-', '_')}.py"
    assert live.is_file(), f"{live} missing (make verify MESH=linkerd LAB={lab} runs it)"
    text = live.read_text()
    assert "require_lab(" in text and f'"{lab}")' in text, "the live test skips until its lab is applied"


LESSON_TABLE = {  # les-11-service-mesh, "Linkerd vs Istio Comparison": feature -> (Istio, Linkerd)
    "Complexity": ("High - Veel configuratie opties", "Low - Simpele setup"),
    "Resource Usage": ("Higher - Envoy proxy overhead", "Lower - Rust-based proxy"),
    "Performance": ("Good - Feature-rich", "Excellent - Optimized for speed"),
    "Learning Curve": ("Steep - Complex concepts", "Gentle - Easy to start"),
    "Protocol Support": ("HTTP, gRPC, TCP", "HTTP, gRPC, TCP"),
    "Multi-cluster": ("✅ Advanced", "✅ Basic"),
    "Security": ("✅ Advanced policies", "✅ mTLS by default"),
}


def _table_rows(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_mesh_comparison_covers_every_lab_and_the_lessons_table() -> None:
    text = (REPO_ROOT / "docs" / "mesh-comparison.md").read_text()
    per_lab = _table_rows(text, "| lab | Istio")
    assert all(len(r) == 3 and r[1] and r[2] for r in per_lab), per_lab
    named = " ".join(r[0] for r in per_lab)
    istio_labs = {p.parent.name for p in (REPO_ROOT / "mesh" / "istio" / "labs").glob("*/kustomization.yaml")}
    for lab in set(LABS) | istio_labs:
        assert re.search(rf"(^|[ (`]){re.escape(lab)}\b", named), (
            f"lab {lab} has no row in docs/mesh-comparison.md"
        )
    lesson = {r[0]: r for r in _table_rows(text, "| Feature | Istio (lesson)")}
    for feature, (istio, linkerd) in LESSON_TABLE.items():
        row = lesson[feature]
        assert row[1:3] == [istio, linkerd], f"{feature}: the lesson's wording, verbatim"
        if feature != "Multi-cluster":
            assert "make verify" in row[3] or "make load" in row[3] or "make up" in row[3], row
