"""Static checks of the Istio overlay and labs: strict schemas plus Istio semantics.

The semantic checkers live in the validator (scripts/k8svalidate/istio.py, run by `make validate`); here
each one runs on every rendered set AND on a planted mistake, so none of them can pass by accident.
"""

from __future__ import annotations

import copy
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT, crossref_errors, entry_points, render, validate_docs
from scripts.k8svalidate.contract import service_calls
from scripts.k8svalidate.istio import (
    SEMANTIC_CHECKS,
    allowed,
    deprecated_field_errors,
    destination_port_errors,
    destination_rule_errors,
    destinations,
    duplicate_host_errors,
    fault_errors,
    gateway_host_errors,
    gateway_ref_errors,
    header_errors,
    http_routes,
    ignored_setting_errors,
    istio_protocol,
    missing_calls,
    pre_apply_secrets,
    principal_errors,
    protocol_errors,
    rule_shape_errors,
    subset_errors,
    tcp_policy_errors,
    tls_secret_errors,
    vs_host_errors,
)
from scripts.k8svalidate.labs import lab_label_errors
from scripts.k8svalidate.resources import Doc, find
from scripts.k8svalidate.resources import name as _name
from scripts.k8svalidate.resources import ns as _ns
from services import topology

ISTIO = REPO_ROOT / "mesh" / "istio"
LABS = ("gateway", "canary", "ab-testing", "resilience", "egress", "security")
FIXTURES = Path(__file__).parent / "fixtures" / "istio_lesson"
STEPS = sorted((ISTIO / "labs").glob("*/steps/*.yaml"))


# ---------------------------------------------------------------- helpers


@cache
def rendered(key: str) -> tuple[Doc, ...]:
    """Rendered docs: 'overlay', a lab name, or 'all' (every non-standalone lab together)."""
    if key == "overlay":
        return tuple(render(ISTIO / "overlay"))
    if key == "all":
        (dirs,) = [d for name, d in entry_points() if name == "istio/all-labs"]
        return tuple(render(dirs))
    return tuple(render(ISTIO / "labs" / key))


def all_sets() -> list[str]:
    return ["overlay", *LABS, "all"]


def load(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# ---------------------------------------------------------------- tests: schemas


@pytest.mark.parametrize("key", all_sets())
def test_every_istio_resource_validates_strictly(key: str) -> None:
    docs = list(rendered(key))
    assert any(d["apiVersion"].startswith(("networking.istio.io", "security.istio.io")) for d in docs)
    assert validate_docs(docs) == []
    assert crossref_errors(docs) == []


def test_istio_resources_use_current_api_versions() -> None:
    for d in rendered("all"):
        group = d["apiVersion"].split("/")[0]
        if group in ("networking.istio.io", "security.istio.io"):
            assert d["apiVersion"] == f"{group}/v1", f"{d['kind']} {_name(d)} uses {d['apiVersion']}"


@pytest.mark.parametrize("step", STEPS, ids=lambda p: p.name)
def test_canary_steps_validate_and_only_change_weights(step: Path) -> None:
    docs = load(step)
    assert validate_docs(docs) == []
    lab_vs = _one("canary", "VirtualService", "product")
    (step_vs,) = docs
    weights = [r.get("weight") for route in http_routes(step_vs) for r in route["route"]]
    assert weights == [None, 95, 5, None, None, 95, 5]
    assert _without_weights(step_vs) == _without_weights(lab_vs)


def _without_weights(vs: Doc) -> Doc:
    vs = copy.deepcopy(vs)
    for route in http_routes(vs):
        for r in route["route"]:
            r.pop("weight", None)
    vs["metadata"].pop("annotations", None)
    return vs


def test_validator_rejects_the_lessons_circuit_breaker_and_h2_max_requests() -> None:
    errors = validate_docs(load(FIXTURES / "backend-destinationrule.yaml"))
    assert any("circuitBreaker" in e for e in errors), errors
    errors = validate_docs(load(FIXTURES / "grpc-service-destinationrule.yaml"))
    assert any("h2MaxRequests" in e for e in errors), errors
    errors = validate_docs(load(FIXTURES / "circuit-breaker.yaml"))
    assert any("consecutiveGatewayErrors" in e for e in errors), errors


def test_the_corrected_versions_are_accepted() -> None:
    fixed = copy.deepcopy(load(FIXTURES / "backend-destinationrule.yaml")[0])
    fixed["spec"]["trafficPolicy"].pop("circuitBreaker")
    fixed["spec"]["trafficPolicy"]["loadBalancer"]["simple"] = "LEAST_REQUEST"
    assert validate_docs([fixed]) == []
    grpc = copy.deepcopy(load(FIXTURES / "grpc-service-destinationrule.yaml")[0])
    http = grpc["spec"]["trafficPolicy"]["portLevelSettings"][0]["connectionPool"]["http"]
    http["http2MaxRequests"] = http.pop("h2MaxRequests")
    assert validate_docs([grpc]) == []


def test_kustomize_refuses_the_lessons_unquoted_port_key(tmp_path: Path) -> None:
    work = REPO_ROOT / ".cache" / "istio-static"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pa.yaml").write_text((FIXTURES / "peer-authentication-backend.yaml").read_text())
    (work / "kustomization.yaml").write_text("resources:\n  - pa.yaml\n")
    with pytest.raises(RuntimeError, match="unsupported type"):
        render(work)
    ours = [
        d for d in rendered("security") if d["kind"] == "PeerAuthentication" and d["spec"].get("selector")
    ]
    assert list(ours[0]["spec"]["portLevelMtls"]) == ["3000"]


# ---------------------------------------------------------------- tests: semantics


@pytest.mark.parametrize("check", SEMANTIC_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("key", all_sets())
def test_semantic_checks_pass(check: Any, key: str) -> None:
    assert check(list(rendered(key))) == []


@pytest.mark.parametrize("step", STEPS, ids=lambda p: p.name)
def test_semantic_checks_pass_with_the_canary_steps(step: Path) -> None:
    docs = [d for d in rendered("all") if not (d["kind"] == "VirtualService" and _name(d) == "product")]
    docs += load(step)
    for check in SEMANTIC_CHECKS:
        assert check(docs) == [], check.__name__


def _edit(key: str, kind: str, name: str, fn: Any) -> list[Doc]:
    docs = copy.deepcopy(list(rendered(key)))
    (doc,) = [d for d in docs if d["kind"] == kind and _name(d) == name]
    fn(doc)
    return docs


def _set(path: list[Any], value: Any) -> Any:
    def fn(doc: Doc) -> None:
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value

    return fn


PLANTED = [
    (gateway_ref_errors, "canary", "VirtualService", "product", ["spec", "gateways", 1], "ecommerce/missing"),
    (
        vs_host_errors,
        "canary",
        "VirtualService",
        "product",
        ["spec", "http", 2, "route", 0, "destination", "host"],
        "backend",
    ),
    (
        subset_errors,
        "canary",
        "VirtualService",
        "product",
        ["spec", "http", 0, "route", 0, "destination", "subset"],
        "v3",
    ),
    (
        subset_errors,
        "canary",
        "DestinationRule",
        "product",
        ["spec", "subsets", 1, "labels", "version"],
        "v2.0",
    ),
    (
        principal_errors,
        "security",
        "AuthorizationPolicy",
        "payment",
        ["spec", "rules", 0, "from", 0, "source", "principals", 0],
        "cluster.local/ns/ecommerce/sa/backend-sa",
    ),
    (rule_shape_errors, "security", "AuthorizationPolicy", "frontend", ["spec", "rules", 0, "to"], []),
    (
        tcp_policy_errors,
        "security",
        "AuthorizationPolicy",
        "mongodb",
        ["spec", "rules", 0, "to", 0, "operation", "methods"],
        ["GET"],
    ),
    (
        fault_errors,
        "resilience",
        "VirtualService",
        "payment",
        ["spec", "http", 0, "fault", "delay", "percentage", "value"],
        0.1,
    ),
    (
        fault_errors,
        "resilience",
        "VirtualService",
        "payment",
        ["spec", "http", 1, "fault", "abort", "percentage", "value"],
        150,
    ),
    (
        fault_errors,
        "resilience",
        "VirtualService",
        "payment",
        ["spec", "http", 0, "retries"],
        {"attempts": 3},
    ),
    (
        header_errors,
        "ab-testing",
        "VirtualService",
        "frontend-vs",
        ["spec", "http", 1, "match", 0, "headers"],
        {"X-User-Group": {"exact": "beta"}},
    ),
    # the first version of the A/B lab: a VirtualService for host `localhost` at the gateway
    (gateway_host_errors, "ab-testing", "VirtualService", "frontend-vs", ["spec", "hosts"], ["localhost"]),
    # Istio's protocol for a Service port: appProtocol first, then the name prefix
    (protocol_errors, "canary", "Service", "product", ["spec", "ports", 1, "appProtocol"], "http"),
    (protocol_errors, "canary", "Service", "product", ["spec", "ports", 0, "appProtocol"], "grpc"),
    (protocol_errors, "security", "Service", "mongodb", ["spec", "ports", 0, "name"], "mongo"),
    (protocol_errors, "egress", "Service", "provider", ["spec", "ports", 0, "name"], "web"),
]


@pytest.mark.parametrize(
    ("check", "key", "kind", "name", "path", "value"),
    PLANTED,
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_each_check_catches_a_planted_mistake(
    check: Any, key: str, kind: str, name: str, path: list[Any], value: Any
) -> None:
    assert check(list(rendered(key))) == []
    assert check(_edit(key, kind, name, _set(path, value))) != []


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        ({"name": "http", "port": 3000}, "HTTP"),
        ({"name": "http", "port": 3000, "appProtocol": "grpc"}, "GRPC"),
        ({"name": "grpc", "port": 9000, "appProtocol": "kubernetes.io/h2c"}, "HTTP2"),
        ({"name": "web", "port": 80, "appProtocol": "kubernetes.io/ws"}, "HTTP"),
        ({"name": "grpc-web-ui", "port": 8080}, "GRPC-Web"),
        ({"name": "HTTP2-api", "port": 8080}, "HTTP2"),
        ({"name": "tcp-mongo", "port": 27017}, "TCP"),
        ({"name": "mongo", "port": 27017}, "Mongo"),
        ({"name": "db", "port": 27017}, "TCP"),
        ({"name": "db", "port": 27018}, "UnsupportedProtocol"),
        ({"port": 8080}, "UnsupportedProtocol"),
        ({"name": "https", "port": 8443, "protocol": "UDP"}, "UDP"),
    ],
)
def test_istio_protocol_selection_is_istios(port: Doc, protocol: str) -> None:
    """pkg/config/kube/conversion.go ConvertProtocol of Istio 1.30.3, case by case."""
    assert istio_protocol(port) == protocol


def test_every_shop_port_gets_its_intended_protocol() -> None:
    docs = list(rendered("all"))
    by_port = {
        (_name(s), p["port"]): istio_protocol(p) for s in find(docs, "Service") for p in s["spec"]["ports"]
    }
    assert by_port[("product", 9000)] == "GRPC"
    assert by_port[("product", 3000)] == by_port[("frontend", 80)] == "HTTP"
    assert by_port[("mongodb", 27017)] == "TCP"
    assert protocol_errors(docs) == []


def test_the_lessons_deprecated_fields_are_caught() -> None:
    """consecutiveErrors is IGNORED by istiod since 1.7 (only a warning); LEAST_CONN is deprecated."""
    errors = deprecated_field_errors(load(FIXTURES / "circuit-breaker.yaml"))
    assert errors == [
        "DestinationRule payment-service-cb: spec.trafficPolicy.outlierDetection.consecutiveErrors is "
        "deprecated and IGNORED: use consecutive5xxErrors (or consecutiveGatewayErrors)"
    ]
    errors = deprecated_field_errors(load(FIXTURES / "backend-destinationrule.yaml"))
    assert errors == [
        "DestinationRule backend-dr: spec.trafficPolicy.loadBalancer.simple: LEAST_CONN is deprecated: "
        "use LEAST_REQUEST"
    ]


DEPRECATED = [
    (
        "resilience",
        "DestinationRule",
        "payment",
        ["spec", "trafficPolicy", "outlierDetection", "consecutiveErrors"],
        3,
    ),
    (
        "resilience",
        "DestinationRule",
        "product",
        ["spec", "trafficPolicy", "portLevelSettings", 0, "outlierDetection", "consecutiveErrors"],
        5,
    ),
    (
        "resilience",
        "DestinationRule",
        "product",
        ["spec", "trafficPolicy", "loadBalancer", "simple"],
        "LEAST_CONN",
    ),
    (
        "resilience",
        "DestinationRule",
        "product",
        [
            "spec",
            "trafficPolicy",
            "portLevelSettings",
            0,
            "loadBalancer",
            "consistentHash",
            "minimumRingSize",
        ],
        1024,
    ),
    (
        "resilience",
        "DestinationRule",
        "payment",
        ["spec", "trafficPolicy", "loadBalancer"],
        {"warmupDurationSecs": "30s"},
    ),
    ("resilience", "VirtualService", "payment", ["spec", "http", 0, "fault", "delay", "percent"], 10),
    ("canary", "VirtualService", "product", ["spec", "http", 4, "mirrorPercent"], 5),
    ("gateway", "Gateway", "ecommerce-gateway", ["spec", "servers", 0, "port", "targetPort"], 8080),
    (
        "egress",
        "Sidecar",
        "default",
        ["spec", "egress"],
        [{"hosts": ["./*"], "port": {"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 8080}}],
    ),
]


@pytest.mark.parametrize(("key", "kind", "name", "path", "value"), DEPRECATED, ids=lambda v: str(v)[-40:])
def test_deprecated_field_check_catches_each_deprecated_field(
    key: str, kind: str, name: str, path: list[Any], value: Any
) -> None:
    assert deprecated_field_errors(list(rendered(key))) == []
    errors = deprecated_field_errors(_edit(key, kind, name, _set(path, value)))
    assert len(errors) == 1 and errors[0].startswith(f"{kind} {name}: spec."), errors


def _vs_rules(*rules: Doc) -> Any:
    def fn(vs: Doc) -> None:
        vs["spec"]["http"] = [*vs["spec"]["http"], *rules]

    return fn


def _tcp_without_addresses(se: Doc) -> None:
    del se["spec"]["addresses"]
    se["spec"]["ports"][0]["protocol"] = "TCP"


IGNORED = [
    # a rule after the catch-all split is never used (the lesson's order mistake, the other way round)
    (
        "canary",
        "VirtualService",
        "product",
        _vs_rules(
            {"name": "late", "route": [{"destination": {"host": "product", "port": {"number": 3000}}}]}
        ),
        "is never used: only the last rule can have no matches",
    ),
    (
        "ab-testing",
        "VirtualService",
        "frontend-vs",
        lambda vs: vs["spec"]["http"].insert(2, copy.deepcopy(vs["spec"]["http"][1]) | {"name": "again"}),
        "all its matches are in earlier rules",
    ),
    (
        "canary",
        "VirtualService",
        "product",
        _set(["spec", "gateways", 1], "ecommerce-gateway.ecommerce"),
        "legacy name.namespace form",
    ),
    (
        "resilience",
        "VirtualService",
        "payment",
        _set(["spec", "http", 1, "fault", "abort"], {"percentage": {"value": 50}}),
        "abort without an error type",
    ),
    (
        "security",
        "AuthorizationPolicy",
        "payment",
        _set(["spec", "selector"], {"matchLabels": {}}),
        "selector without labels",
    ),
    (
        "egress",
        "Sidecar",
        "default",
        _set(["spec", "workloadSelector"], {"labels": {}}),
        "workloadSelector without labels",
    ),
    (
        "gateway",
        "Gateway",
        "ecommerce-gateway",
        _set(["spec", "servers", 1, "tls", "mode"], "PASSTHROUGH"),
        "does not use certificates",
    ),
    (
        "gateway",
        "Gateway",
        "ecommerce-gateway",
        _set(["spec", "servers", 1, "tls", "httpsRedirect"], True),
        "only used on HTTP servers",
    ),
    (
        "gateway",
        "Gateway",
        "ecommerce-gateway",
        _set(["spec", "servers", 1, "tls", "minProtocolVersion"], "TLSV1_1"),
        "TLS below 1.2 needs cipherSuites",
    ),
    (
        "gateway",
        "Gateway",
        "ecommerce-gateway",
        _set(["spec", "servers", 1, "tls", "cipherSuites"], ["ECDHE-RSA-AES128-GCM-SHA256"] * 2),
        "duplicate cipherSuites",
    ),
    (
        "egress",
        "ServiceEntry",
        "payment-provider",
        _tcp_without_addresses,
        "serve TCP (or no protocol) without addresses",
    ),
]


@pytest.mark.parametrize(("key", "kind", "name", "edit", "expected"), IGNORED, ids=[i[4] for i in IGNORED])
def test_ignored_setting_check_catches_each_warning_istio_gives(
    key: str, kind: str, name: str, edit: Any, expected: str
) -> None:
    assert ignored_setting_errors(list(rendered(key))) == []
    errors = ignored_setting_errors(_edit(key, kind, name, edit))
    assert errors and any(expected in e for e in errors), errors


def test_ignored_setting_check_accepts_httpsredirect_on_the_http_server() -> None:
    """httpsRedirect on the port 80 (HTTP) server is what it is for: no warning."""
    path = ["spec", "servers", 0, "tls"]
    assert (
        ignored_setting_errors(
            _edit("gateway", "Gateway", "ecommerce-gateway", _set(path, {"httpsRedirect": True}))
        )
        == []
    )


def test_envoyfilter_and_second_tracing_provider_are_caught() -> None:
    envoy_filter = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "x"},
        "spec": {"configPatches": []},
    }
    telemetry = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": "istio-system"},
        "spec": {"tracing": [{"providers": [{"name": "jaeger"}, {"name": "zipkin"}]}]},
    }
    assert ignored_setting_errors([envoy_filter, telemetry]) == [
        "Telemetry mesh-default: more than one tracing provider is not supported",
        "EnvoyFilter x: exposes Envoy internals that change between Istio releases",
    ]


def test_duplicate_virtual_services_are_caught() -> None:
    """The lesson's backend-vs and backend-canary-vs: two VirtualServices for one mesh host."""
    docs = list(rendered("canary"))
    second = copy.deepcopy(_one("canary", "VirtualService", "product"))
    second["metadata"]["name"] = "product-cookie"
    second["spec"].pop("gateways")
    assert duplicate_host_errors(docs) == []
    assert duplicate_host_errors([*docs, second]) != []
    lesson = load(FIXTURES / "backend-virtualservice.yaml") + load(
        FIXTURES / "backend-canary-virtualservice.yaml"
    )
    assert duplicate_host_errors(lesson) != []


def test_second_destination_rule_for_a_host_is_caught() -> None:
    docs = list(rendered("all"))
    extra = copy.deepcopy(_one("all", "DestinationRule", "product"))
    extra["metadata"]["name"] = "product-resilience"
    assert destination_rule_errors([*docs, extra]) != []


def test_lessons_split_rules_and_http_fields_on_mongodb_are_caught() -> None:
    assert rule_shape_errors(load(FIXTURES / "authorization-frontend.yaml")) != []
    docs = copy.deepcopy(list(rendered("security")))
    (mongo,) = [d for d in docs if d["kind"] == "AuthorizationPolicy" and _name(d) == "mongodb"]
    mongo["spec"]["rules"][0]["from"][0]["source"]["requestPrincipals"] = ["*"]
    assert tcp_policy_errors(docs) != []


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_resource_is_labelled(lab: str) -> None:
    overlay = list(rendered("overlay"))
    assert lab_label_errors(lab, list(rendered(lab)), overlay) == []
    planted = copy.deepcopy(list(rendered(lab)))
    planted.append({"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ecommerce"}})
    assert lab_label_errors(lab, planted, overlay) != []


def test_tls_secret_is_created_in_the_gateway_namespace() -> None:
    docs = list(rendered("gateway"))
    secrets = pre_apply_secrets("gateway")
    assert secrets == {("istio-system", "ecommerce-tls-secret")}
    assert tls_secret_errors(docs, secrets) == []
    assert tls_secret_errors(docs, {("ecommerce", "ecommerce-tls-secret")}) != []
    lesson_gw = load(FIXTURES / "gateway.yaml")
    assert any("name" in e or "Secret" in e for e in tls_secret_errors(lesson_gw, set()))


def test_egress_provider_secret_is_generated_not_committed() -> None:
    assert pre_apply_secrets("egress") == {("payments-provider", "provider-tls")}
    tracked = subprocess.run(["git", "ls-files", "mesh/istio"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert not [f for f in tracked.stdout.split() if f.endswith((".key", ".crt", ".pem"))]


# ---------------------------------------------------------------- tests: lab specifics


def _one(key: str, kind: str, name: str) -> Doc:
    (doc,) = [d for d in rendered(key) if d["kind"] == kind and _name(d) == name]
    return doc


def test_canary_is_one_virtual_service_for_mesh_and_gateway() -> None:
    vs = _one("canary", "VirtualService", "product")
    assert set(vs["spec"]["gateways"]) == {"mesh", "ecommerce-gateway"}
    names = [r["name"] for r in http_routes(vs)]
    assert names == ["inventory-canary-header", "inventory-split", "canary-header", "canary-cookie", "split"]
    rest = http_routes(vs)[2:]
    assert rest[0]["match"][0]["headers"] == {"canary": {"exact": "true"}}
    cookie = re.compile(rest[1]["match"][0]["headers"]["cookie"]["regex"])
    assert cookie.fullmatch("session=abc; canary=true")
    assert cookie.fullmatch("canary=true")
    assert not cookie.fullmatch("nocanary=true")
    assert [(r["destination"]["subset"], r["weight"]) for r in rest[2]["route"]] == [
        ("stable", 90),
        ("canary", 10),
    ]
    # product has two ports: REST rules send to 3000 (also from the gateway, whose own port is 80), and
    # order's gRPC Inventory calls on 9000 are matched first and stay on 9000, split the same way.
    assert {d["port"]["number"] for r in rest for d in (x["destination"] for x in r["route"])} == {3000}
    inventory_header, inventory_split = http_routes(vs)[:2]
    assert inventory_header["match"] == [{"port": 9000, "headers": {"canary": {"exact": "true"}}}]
    assert inventory_split["match"] == [{"port": 9000}]
    assert [
        (r["destination"]["subset"], r["destination"]["port"]["number"], r["weight"])
        for r in inventory_split["route"]
    ] == [("stable", 9000, 90), ("canary", 9000, 10)]


def test_destination_port_check_catches_the_first_canary_lab_and_grpc_sent_to_rest() -> None:
    """The canary lab as it was: no destination named a port of product (3000, 9000): IST0112, 503 at the
    gateway. Naming port 3000 without the gRPC rules first would send order's Inventory calls to 3000."""
    assert destination_port_errors(list(rendered("canary"))) == []

    def rest_rules_only(vs: Doc) -> None:
        vs["spec"]["http"] = vs["spec"]["http"][2:]

    grpc_to_rest = _edit("canary", "VirtualService", "product", rest_rules_only)
    errors = destination_port_errors(grpc_to_rest)
    assert len(errors) == 4, errors
    assert errors[0] == (
        "VirtualService product http[canary-header]: traffic to product:9000 reaches this rule and is sent "
        "to port 3000; match `port: 9000` in an earlier rule"
    )

    def first_lab(vs: Doc) -> None:
        rest_rules_only(vs)
        for route in http_routes(vs):
            for r in route["route"]:
                del r["destination"]["port"]

    errors = destination_port_errors(_edit("canary", "VirtualService", "product", first_lab))
    assert len(errors) == 4 and all("has ports [3000, 9000], name one (IST0112" in e for e in errors), errors
    path = ["spec", "http", 4, "route", 0, "destination", "port", "number"]
    assert destination_port_errors(_edit("canary", "VirtualService", "product", _set(path, 8080))) == [
        "VirtualService product http[split]: product:8080 is no port of it [3000, 9000]"
    ]


def test_ab_routes_replace_the_gateway_entry_route() -> None:
    vss = find(rendered("ab-testing"), "VirtualService")
    assert [_name(v) for v in vss] == ["frontend-vs"], "no second VirtualService for the gateway's hosts"
    (vs,) = vss
    assert vs["spec"]["gateways"] == ["ecommerce-gateway"] and vs["spec"]["hosts"] == ["*"]
    assert vs["metadata"]["labels"]["lab"] == "ab-testing", "make lab-reset must find it"
    mobile, beta, rest = http_routes(vs)
    assert re.fullmatch(
        mobile["match"][0]["headers"]["user-agent"]["regex"], "Mozilla/5.0 (iPhone) Mobile/15E148"
    )
    assert not re.fullmatch(mobile["match"][0]["headers"]["user-agent"]["regex"], "Mozilla/5.0 (X11) Firefox")
    assert mobile["route"][0]["destination"]["subset"] == "mobile-optimized"
    header, cookie = beta["match"]
    assert header["headers"] == {"x-user-group": {"exact": "beta"}}, "the lesson's header rule stays"
    assert list(cookie["headers"]) == ["cookie"], "the browser's way: the shop_group cookie"
    assert beta["route"][0]["destination"]["subset"] == "beta-features"
    assert "match" not in rest and rest["route"][0]["destination"]["subset"] == "stable"


@pytest.mark.parametrize(
    ("cookie", "beta"),
    [
        ("shop_group=beta", True),
        ("shop_access=x.y.z; shop_group=beta; canary=true", True),
        ("shop_group=customer", False),
        ("shop_group=betatester", False),
        ("xshop_group=beta", False),
        ("", False),
    ],
)
def test_ab_beta_cookie_is_the_one_the_frontend_sets(cookie: str, beta: bool) -> None:
    """Browsers never send x-user-group; the frontend's readable cookie shop_group=<group> does the job."""
    from services.frontend.session import GROUP_COOKIE

    vs = _one("ab-testing", "VirtualService", "frontend-vs")
    (regex,) = [
        m["headers"]["cookie"]["regex"] for m in http_routes(vs)[1]["match"] if "cookie" in m["headers"]
    ]
    assert f"{GROUP_COOKIE}=beta" in regex
    assert bool(re.fullmatch(regex, cookie)) is beta


def test_resilience_fixes_the_lessons_destination_rules() -> None:
    product = _one("resilience", "DestinationRule", "product")["spec"]
    assert [s["name"] for s in product["subsets"]] == ["stable", "canary"]
    policy = product["trafficPolicy"]
    assert policy["loadBalancer"] == {"simple": "LEAST_REQUEST"}
    (grpc,) = policy["portLevelSettings"]
    assert grpc["port"]["number"] == 9000
    assert grpc["loadBalancer"]["consistentHash"] == {"httpHeaderName": "x-user-id"}
    assert grpc["connectionPool"]["http"]["http2MaxRequests"] == 100
    assert "outlierDetection" in grpc
    payment = _one("resilience", "DestinationRule", "payment")["spec"]["trafficPolicy"]
    assert "consecutiveErrors" not in payment["outlierDetection"]
    assert payment["outlierDetection"]["consecutive5xxErrors"] == 3
    assert set(payment["connectionPool"]["http"]) <= {"http1MaxPendingRequests", "maxRequestsPerConnection"}
    posts, user = _one("resilience", "VirtualService", "user")["spec"]["http"]
    assert user["retries"] == {
        "attempts": 3,
        "perTryTimeout": "2s",
        "retryOn": "5xx,gateway-error,connect-failure,refused-stream",
    }
    assert user["timeout"] == "10s" and "match" not in user
    # POST /users/me/addresses is not idempotent: retried only when it never reached the service
    assert posts["match"] == [{"method": {"exact": "POST"}}]
    assert set(posts["retries"]["retryOn"].split(",")) <= {"connect-failure", "refused-stream"}
    assert "perTryTimeout" not in posts["retries"] and posts["timeout"] == "10s"
    delay, abort, default = _one("resilience", "VirtualService", "payment")["spec"]["http"]
    assert delay["fault"]["delay"] == {"percentage": {"value": 10}, "fixedDelay": "5s"}
    assert abort["fault"]["abort"]["httpStatus"] == 503
    assert "fault" not in default


def test_egress_originates_tls_for_plain_http_and_blocks_unknown_hosts() -> None:
    docs = list(rendered("egress"))
    (se,) = find(docs, "ServiceEntry")
    assert se["spec"]["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443}]
    assert se["spec"]["location"] == "MESH_EXTERNAL"
    provider = _one("egress", "Service", "provider")
    assert se["spec"]["endpoints"][0]["address"] == f"provider.{_ns(provider)}.svc.cluster.local"
    assert [p["port"] for p in provider["spec"]["ports"] if p["name"] == "https"] == [443]
    dr = _one("egress", "DestinationRule", "payment-provider")["spec"]
    assert dr["host"] == se["spec"]["hosts"][0]
    assert dr["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"] == "SIMPLE"
    (sidecar,) = find(docs, "Sidecar")
    assert sidecar["spec"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert _ns(sidecar) == "ecommerce" and "workloadSelector" not in sidecar["spec"]
    namespaces = {_name(n): n for n in find(docs, "Namespace")}
    assert namespaces["payments-provider"]["metadata"]["labels"]["istio-injection"] == "disabled"
    payment = _one("egress", "Deployment", "payment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "PROVIDER_URL", "value": f"http://{se['spec']['hosts'][0]}"} in payment["env"]


def test_security_policies_follow_who_calls_whom() -> None:
    docs = list(rendered("security"))
    policies = {_name(p): p for p in find(docs, "AuthorizationPolicy")}
    apps = {s["spec"]["selector"]["app"] for s in find(docs, "Service")}
    assert set(policies) == apps, "every workload (and MongoDB) has a policy"

    def callers(app: str) -> set[str]:
        return {
            p.rsplit("/", 1)[1]
            for r in policies[app]["spec"]["rules"]
            for f in r["from"]
            for p in f["source"]["principals"]
        }

    assert callers("frontend") == {"istio-ingressgateway-service-account"}
    assert callers("payment") == {"order-sa"}
    assert callers("user") == {"frontend-sa"}
    assert "frontend-sa" not in callers("mongodb")
    assert callers("mongodb") == {f"{s}-sa" for s in topology.WITH_DATABASE}
    order_rule = policies["order"]["spec"]["rules"][0]["from"][0]["source"]
    assert order_rule["requestPrincipals"] == ["shop-auth/*"]
    (ra,) = find(docs, "RequestAuthentication")
    assert ra["spec"]["selector"]["matchLabels"] == {"app": "order"}
    kit = (REPO_ROOT / "services" / "kit" / "settings.py").read_text()
    issuer = re.search(r'jwt_issuer: str = "([^"]+)"', kit).group(1)  # type: ignore[union-attr]
    audience = re.search(r'jwt_audience: str = "([^"]+)"', kit).group(1)  # type: ignore[union-attr]
    assert ra["spec"]["jwtRules"][0]["issuer"] == issuer == "shop-auth"
    assert ra["spec"]["jwtRules"][0]["audiences"] == [audience]
    assert order_rule["requestPrincipals"] == [f"{issuer}/*"]
    assert ra["spec"]["jwtRules"][0]["forwardOriginalToken"] is True
    modes = {_name(p): p["spec"]["mtls"]["mode"] for p in find(docs, "PeerAuthentication")}
    assert modes["default"] == "STRICT"


def policy_table_rows(docs: list[Doc]) -> list[tuple[str, str, str]]:
    """(workload, callers, what) per ALLOW rule: the table of docs/istio/security.md, from the YAML."""
    rows = []
    for ap in find(docs, "AuthorizationPolicy"):
        app = ap["spec"]["selector"]["matchLabels"]["app"]
        for rule in ap["spec"]["rules"]:
            callers = []
            for f in rule["from"]:
                who = ", ".join(f"`{p.rsplit('/', 1)[1]}`" for p in f["source"].get("principals", []))
                jwt = ", ".join(f"`{p}`" for p in f["source"].get("requestPrincipals", []))
                callers.append(f"{who} + JWT {jwt}" if jwt else who)  # one source: both must hold
            ops = []
            for to in rule["to"]:
                op = to["operation"]
                words = [", ".join(op["methods"])] if "methods" in op else []
                words += [", ".join(f"`{p}`" for p in op["paths"])] if "paths" in op else []
                words += [f"port {', '.join(op['ports'])}"] if "ports" in op else []
                ops.append(" ".join(words))
            rows.append((app, " or ".join(callers), "; ".join(ops)))
    return rows


def security_guide_rows() -> list[tuple[str, str, str]]:
    text = (REPO_ROOT / "docs" / "istio" / "security.md").read_text()
    table = text.split("<!-- policy-table -->")[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| workload ")]
    return [tuple(c.strip() for c in ln.strip().strip("|").split(" | ")) for ln in rows]  # type: ignore[misc]


def test_security_guide_table_matches_the_policies() -> None:
    """The guide's who-may-call-what table is the YAML's, rule by rule (no drift after a policy change)."""
    rows = policy_table_rows(list(rendered("security")))
    assert security_guide_rows() == rows
    assert ("shipping", "`order-sa`", "POST `/shipping/quote`, `/shipments`; GET `/shipments/*`") in rows
    assert not any(app == "shipping" and "frontend-sa" in callers for app, callers, _ in rows)


def test_policies_allow_every_call_the_services_really_make() -> None:
    calls = service_calls()
    assert ("order-sa", "payment", "POST", "/payments/x1/refund", None) in calls
    assert ("order-sa", "auth", "POST", "/oauth2/token", None) in calls
    assert ("order-sa", "payment", "GET", "/payments/by-order/x1", None) in calls
    assert ("order-sa", "payment", "POST", "/payments/by-order/x1/cancel", None) in calls
    assert ("frontend-sa", "order", "DELETE", "/cart/items/x1", None) in calls
    assert any(c[4] == 9000 for c in calls)
    docs = list(rendered("security"))
    assert missing_calls(docs) == []
    planted = copy.deepcopy(docs)
    (payment,) = [p for p in planted if p["kind"] == "AuthorizationPolicy" and _name(p) == "payment"]
    payment["spec"]["rules"][0]["to"][0]["operation"]["paths"] = ["/payments"]
    # order's other POSTs to payment (refund, the settler's charge-or-cancel) fall outside the planted rule
    assert sorted(missing_calls(planted)) == [
        "order-sa -> payment POST /payments/by-order/x1/cancel",
        "order-sa -> payment POST /payments/x1/refund",
    ]


def test_policies_deny_what_nobody_calls() -> None:
    docs = list(rendered("security"))
    assert not allowed(docs, "notification-sa", "payment", "POST", "/payments", None)
    assert not allowed(docs, "frontend-sa", "payment", "POST", "/payments", None)
    assert not allowed(docs, "frontend-sa", "product", "DELETE", "/products/x1", None)
    assert not allowed(docs, "frontend-sa", "product", "POST", "/shop.inventory.v1.Inventory/Reserve", 9000)


# ---------------------------------------------------------------- tests: install input and overlay


def test_istio_operator_makes_the_gateway_a_nodeport_on_the_kind_mappings() -> None:
    iop = yaml.safe_load((ISTIO / "install" / "istio-kind.yaml").read_text())
    assert iop["kind"] == "IstioOperator" and iop["spec"]["profile"] == "demo"
    (gw,) = iop["spec"]["components"]["ingressGateways"]
    assert gw["name"] == "istio-ingressgateway" and gw["enabled"] is True
    svc = gw["k8s"]["service"]
    assert svc["type"] == "NodePort"
    ports = {p["name"]: p for p in svc["ports"]}
    # The demo profile's gateway ports (manifests/profiles/demo.yaml): the list is replaced, so all stay.
    assert set(ports) == {"status-port", "http2", "https", "tcp", "tls"}
    assert (ports["http2"]["port"], ports["http2"]["targetPort"]) == (80, 8080)
    assert (ports["https"]["port"], ports["https"]["targetPort"]) == (443, 8443)
    kind = yaml.safe_load((REPO_ROOT / "kind" / "cluster.yaml").read_text())
    mapped = {
        m["hostPort"]: m["containerPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])
    }
    assert ports["http2"]["nodePort"] == mapped[80]
    assert ports["https"]["nodePort"] == mapped[443]
    proxy_meta = iop["spec"]["meshConfig"]["defaultConfig"]["proxyMetadata"]
    assert proxy_meta["ISTIO_META_DNS_CAPTURE"] == "true", "the egress lab's host name needs DNS proxying"
    jwks = iop["spec"]["values"]["pilot"]["env"]["PILOT_JWT_ENABLE_REMOTE_JWKS"]
    assert jwks in ("hybrid", "true", "envoy"), "under STRICT mTLS only a sidecar can fetch auth's JWKS"


def test_istio_operator_is_not_a_kustomize_resource() -> None:
    for kust in ISTIO.rglob("kustomization.yaml"):
        assert "istio-kind" not in kust.read_text(), kust
    assert all(d["kind"] != "IstioOperator" for d in rendered("all"))


def test_overlay_labels_namespace_and_leaves_nodeport_30080_to_the_gateway() -> None:
    docs = list(rendered("overlay"))
    (ns,) = find(docs, "Namespace")
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
    for svc in find(docs, "Service"):
        assert svc["spec"].get("type", "ClusterIP") != "NodePort", _name(svc)
    (gw,) = find(docs, "Gateway")
    (entry,) = [v for v in find(docs, "VirtualService") if _name(v) == "frontend-vs"]
    assert entry["spec"]["gateways"] == [_name(gw)]
    assert destinations(entry)[0]["host"] == "frontend"


def test_every_lab_has_a_guide_and_a_live_test() -> None:
    readme = (REPO_ROOT / "docs" / "istio" / "README.md").read_text()
    for lab in LABS:
        guide = REPO_ROOT / "docs" / "istio" / f"{lab}.md"
        assert f"make verify MESH=istio LAB={lab}" in guide.read_text(), guide
        assert (REPO_ROOT / "tests" / "cluster" / "istio" / f"test_{lab.replace('-', '_')}.py").exists()
        assert f"({lab}.md)" in readme
    for fixture in FIXTURES.glob("*.yaml"):
        assert fixture.stem in readme, f"README table misses the lesson block {fixture.name}"


# What a sidecar keeps of Envoy's statistics (Istio 1.30.3 pkg/bootstrap/config.go and the bootstrap
# template's stats_matcher): these prefixes and suffixes, plus the pod's proxyStatsMatcher.
ENVOY_STATS_KEPT_PREFIXES = (
    "reporter=",
    "component",
    "istio",
    "cluster_manager",
    "listener_manager",
    "server",
)
ENVOY_STATS_KEPT_PREFIXES += ("cluster.xds-grpc", "wasm")
ENVOY_STATS_KEPT_SUFFIXES = (
    "rbac.allowed",
    "rbac.denied",
    "shadow_allowed",
    "shadow_denied",
    "downstream_cx_active",
)
ENVOY_STATS_KEPT_REGEXPS = (r"vhost\..*\.route\..*",)
# Stats a guide may grep for: Envoy's names for the shop's upstream clusters.
_CLUSTER = "cluster.outbound|3000||{}.ecommerce.svc.cluster.local."
ENVOY_STAT_NAMES = ["server.memory_allocated"] + [
    _CLUSTER.format(svc) + stat
    for svc in ("payment", "user", "product")
    for stat in (
        "upstream_rq_retry",
        "upstream_rq_pending_overflow",
        "outlier_detection.ejections_enforced_total",
    )
]


# `... pilot-agent request GET stats | grep [-E] 'pattern'` (or an unquoted pattern) in a guide
STATS_GREP = r"pilot-agent request GET stats \\?\| grep (?:-E )?(?:'([^']+)'|([^\s|`']+))"


def _kept(stat: str, regexps: list[str]) -> bool:
    if stat.startswith(ENVOY_STATS_KEPT_PREFIXES) or stat.endswith(ENVOY_STATS_KEPT_SUFFIXES):
        return True
    return any(re.fullmatch(r, stat) for r in [*ENVOY_STATS_KEPT_REGEXPS, *regexps])


def _lab_stats_regexps() -> list[str]:
    patch = yaml.safe_load(
        (ISTIO / "labs" / "resilience" / "deployment-callers-proxy-stats.yaml").read_text()
    )
    config = yaml.safe_load(patch["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"])
    return list(config["proxyStatsMatcher"]["inclusionRegexps"])


def test_every_proxy_stat_a_guide_greps_is_kept_by_the_sidecar() -> None:
    """Issue: the resilience guide grepped retry/overflow/ejection stats that Istio trims by default."""
    greps = []
    for guide in sorted((REPO_ROOT / "docs").rglob("*.md")):
        for m in re.finditer(STATS_GREP, guide.read_text()):
            greps.append((guide.name, m.group(1) or m.group(2)))
    assert ("resilience.md", "payment.*(retry|overflow|ejections)") in greps
    for guide, pattern in greps:
        named = [s for s in ENVOY_STAT_NAMES if re.search(pattern, s)]
        assert named, f"{guide}: grep {pattern!r} matches none of the stats we know"
        regexps = _lab_stats_regexps() if guide == "resilience.md" else []
        assert all(_kept(s, regexps) for s in named), f"{guide}: {pattern!r} greps stats the sidecar trims"
        if guide == "resilience.md":
            assert not any(_kept(s, []) for s in named), "without the lab's matcher these are trimmed"


def test_resilience_lab_turns_the_stats_on_for_the_callers_only() -> None:
    docs = list(rendered("resilience"))
    annotated = {
        _name(d)
        for d in find(docs, "Deployment")
        if "proxy.istio.io/config" in (d["spec"]["template"]["metadata"].get("annotations") or {})
    }
    assert annotated == {"order", "frontend"}, "order calls payment, frontend calls user"
