"""Static checks of the Linkerd overlay and labs: strict schemas plus Linkerd-specific semantics.

The semantic checkers live in the validator (scripts/k8svalidate/linkerd.py, run by `make validate`); here
each one runs on every rendered set AND on a planted mistake, so none of them can pass by accident.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT, crossref_errors, render, validate_docs
from scripts.k8svalidate.contract import architecture_callers
from scripts.k8svalidate.labs import lab_label_errors
from scripts.k8svalidate.linkerd import (
    GATEWAY_GROUP,
    POLICY_GROUP,
    allowed_callers,
    authorization_errors,
    contract_errors,
    meshtls_errors,
    mongodb_server_errors,
    probe_authorization_errors,
    profile_conflicts,
    route_ref_errors,
    server_errors,
    server_route_kind_errors,
)
from scripts.k8svalidate.resources import Doc, find, name, ns, selects, workload_pods

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
    profiles = {name(sp): sp for sp in find(docs, "ServiceProfile")}
    splits = find(docs, "TrafficSplit")
    assert splits
    for ts in splits:
        sp = profiles[f"{ts['spec']['service']}.{ns(ts)}.svc.cluster.local"]
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
    versions = {t.labels["version"] for t in workload_pods(docs) if t.labels.get("app") == "product"}
    assert versions == {"v1", "v2"}  # what x-served-by reports: product/v1, product/v2
    for role, version in (("stable", "v1"), ("canary", "v2")):
        assert one(docs, "Service", f"product-{role}")["spec"]["selector"] == {
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
        assert any(selects(sel, t.labels) for t in workload_pods(docs)), variant


def test_resilience_annotations_and_error_injector_share() -> None:
    docs = rendered("resilience")
    assert not (one(docs, "Service", "user")["metadata"].get("annotations") or {})  # not for every method
    retried = one(docs, "HTTPRoute", "user-idempotent-retries")
    assert retried["metadata"]["annotations"] == {
        "retry.linkerd.io/http": "5xx",
        "retry.linkerd.io/limit": "3",
        "retry.linkerd.io/timeout": "2s",
        "timeout.linkerd.io/request": "10s",
    }
    (rule,) = retried["spec"]["rules"]
    assert [m["method"] for m in rule["matches"]] == ["GET", "PUT", "DELETE"]
    others = one(docs, "HTTPRoute", "user-other-methods")
    assert others["metadata"]["annotations"] == {"timeout.linkerd.io/request": "10s"}  # a timeout, no retry
    assert "matches" not in others["spec"]["rules"][0]
    for route in (retried, others):
        assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "user", "port": 3000}]
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
    assert contract_errors(docs) == []


def test_contract_check_catches_a_caller_too_many_and_a_server_missing() -> None:
    docs = rendered("security")
    auth = one(docs, "MeshTLSAuthentication", "payment-http-callers")
    auth["spec"]["identityRefs"].append({"kind": "ServiceAccount", "name": "frontend-sa"})
    errors = contract_errors(docs)
    assert len(errors) == 1 and "Server payment-http" in errors[0] and "'frontend-sa'" in errors[0], errors
    docs = [d for d in rendered("security") if (d["kind"], name(d)) != ("Server", "mongodb")]
    assert contract_errors(docs) == ["mongodb (tcp) is a callee in docs/architecture.md but has no Server"]


def test_every_api_container_port_has_a_server() -> None:
    docs = rendered("security")
    covered = {
        (s["spec"]["podSelector"]["matchLabels"]["app"], s["spec"]["port"])
        for s in find(docs, "Server", POLICY_GROUP)
    }
    for tpl in workload_pods(docs):
        for c in tpl.containers:
            for p in c.get("ports", []):
                assert (tpl.labels["app"], p["containerPort"]) in covered, (tpl.labels, p)


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
    probe = next(t for t in workload_pods(docs) if t.labels == {"app": "product", "version": "v1"})
    (container,) = probe.containers
    assert container["startupProbe"]["grpc"]["port"] == 9000, "the probe this route exists for"
    health = one(docs, "GRPCRoute", "product-grpc-health")["spec"]["rules"][0]["matches"]
    assert health == [{"method": {"service": "grpc.health.v1.Health", "method": "Check"}}]
    policy = one(docs, "AuthorizationPolicy", "product-grpc-health-probes")["spec"]
    assert policy["targetRef"] == {"group": GATEWAY_GROUP, "kind": "GRPCRoute", "name": "product-grpc-health"}
    assert [r["kind"] for r in policy["requiredAuthenticationRefs"]] == ["NetworkAuthentication"]
    assert allowed_callers(docs)["product-grpc"] == {"order-sa"}


def _route_on_server(group: str, server: str, path: dict[str, str]) -> Doc:
    return {
        "apiVersion": f"{group}/{'v1' if group == GATEWAY_GROUP else 'v1beta3'}",
        "kind": "HTTPRoute",
        "metadata": {"name": f"{server}-route", "namespace": "ecommerce"},
        "spec": {
            "parentRefs": [{"group": POLICY_GROUP, "kind": "Server", "name": server}],
            "rules": [{"matches": [{"path": path}]}],
        },
    }


def _policy(target_kind: str, target: str, auth_kind: str, auth: str) -> Doc:
    group = GATEWAY_GROUP if target_kind in ("HTTPRoute", "GRPCRoute") else POLICY_GROUP
    return {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{target}-{auth}", "namespace": "ecommerce"},
        "spec": {
            "targetRef": {"group": group, "kind": target_kind, "name": target},
            "requiredAuthenticationRefs": [{"group": POLICY_GROUP, "kind": auth_kind, "name": auth}],
        },
    }


@pytest.mark.parametrize("group", [GATEWAY_GROUP, POLICY_GROUP])
def test_probe_check_knows_any_httproute_on_a_server_ends_the_automatic_probe_authorization(
    group: str,
) -> None:
    """Linkerd's probe route exists only while NO HTTPRoute of either API group is attached to the Server."""
    docs = rendered("security")
    assert probe_authorization_errors(docs) == []
    docs.append(_route_on_server(group, "payment-http", {"type": "PathPrefix", "value": "/payments"}))
    errors = probe_authorization_errors(docs)
    assert len(errors) == 2, errors  # liveness /healthz and readiness /readyz of Deployment payment
    assert all("Linkerd stops authorizing probes itself; none matches" in e for e in errors), errors
    assert any("readinessProbe (httpGet /readyz on Server payment-http)" in e for e in errors), errors
    # a route for every path: it matches the probes, but the Server's policy asks for order-sa's identity
    docs[-1]["spec"]["rules"] = [{}]
    errors = probe_authorization_errors(docs)
    assert len(errors) == 2 and all(
        "no AuthorizationPolicy with only a NetworkAuthentication" in e for e in errors
    )
    docs.append(_policy("HTTPRoute", "payment-http-route", "MeshTLSAuthentication", "payment-http-callers"))
    assert len(probe_authorization_errors(docs)) == 2, "an identity-only policy does not let the kubelet in"
    docs.append(_policy("HTTPRoute", "payment-http-route", "NetworkAuthentication", "anywhere"))
    assert probe_authorization_errors(docs) == []


def test_probe_check_catches_the_grpc_probe_without_its_route_or_policy() -> None:
    docs = [d for d in rendered("security") if name(d) != "product-grpc-health-probes"]
    errors = probe_authorization_errors(docs)
    assert len(errors) == 2, errors  # Deployments product and product-canary
    assert all(
        "startupProbe (grpc /grpc.health.v1.Health/Check on Server product-grpc): "
        "GRPCRoute product-grpc-health matches it, but no AuthorizationPolicy" in e
        for e in errors
    ), errors
    docs = [d for d in rendered("security") if d["kind"] != "GRPCRoute"]
    errors = probe_authorization_errors(docs)
    assert len(errors) == 2 and all("Linkerd authorizes no grpc probe by itself" in e for e in errors), errors
    docs = rendered("security")
    product = next(d for d in docs if d["kind"] == "Deployment" and name(d) == "product")
    product["spec"]["template"]["spec"]["containers"][0]["startupProbe"] = {
        "httpGet": {"path": "/", "port": 9000}
    }
    errors = probe_authorization_errors(docs)
    assert len(errors) == 1 and "a gRPC Server takes no HTTP probes" in errors[0], errors


def test_mongodb_check_catches_a_non_opaque_server() -> None:
    docs = rendered("security")
    one(docs, "Server", "mongodb")["spec"]["proxyProtocol"] = "unknown"
    assert mongodb_server_errors(docs) == ["MongoDB Server mongodb has proxyProtocol 'unknown'"]
    assert mongodb_server_errors(rendered()) == ["expected exactly one Server for MongoDB, found 0"]


@pytest.mark.parametrize("other", ["canary", "resilience"])
def test_legacy_with_canary_or_resilience_is_detected_as_forbidden(other: str) -> None:
    docs = rendered("legacy") + rendered(other)
    errors = profile_conflicts(docs)
    routes = {"canary": "HTTPRoute product-canary", "resilience": "HTTPRoute user-idempotent-retries"}
    expected = routes[other]
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


# API groups served only by extensions that are archived upstream: a lab using one is optional and says why.
ARCHIVED_API_GROUPS = {"split.smi-spec.io": "linkerd-smi (archived upstream since October 2025)"}


def archived_dependency_errors(
    lab: str, lab_docs: list[Doc], guide: str, readmes: dict[str, str]
) -> list[str]:
    """A lab whose resources need an archived extension is marked optional in its guide and lab tables."""
    groups = {d["apiVersion"].split("/")[0] for d in lab_docs if "/" in d["apiVersion"]}
    archived = sorted(groups & set(ARCHIVED_API_GROUPS))
    if not archived:
        return []
    errors = []
    opening = "\n".join(guide.splitlines()[:8])
    if "Optional" not in opening or "archived" not in opening:
        errors.append(f"guide of lab {lab}: the opening must say Optional and that {archived} is archived")
    for readme, text in readmes.items():
        rows = [ln for ln in text.splitlines() if ln.startswith("|") and f"{lab}.md" in ln]
        if not rows or not all("optional" in r.lower() for r in rows):
            errors.append(f"{readme}: the row of lab {lab} must say optional")
    return errors


def _readmes() -> dict[str, str]:
    return {p: (REPO_ROOT / p).read_text() for p in ("README.md", "docs/linkerd/README.md")}


@pytest.mark.parametrize("lab", LABS)
def test_labs_on_archived_extensions_are_marked_optional(lab: str) -> None:
    guide = (REPO_ROOT / "docs" / "linkerd" / f"{lab}.md").read_text()
    assert archived_dependency_errors(lab, rendered(lab), guide, _readmes()) == []
    planted = [*rendered(lab), {"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit"}]
    if lab == "legacy":
        assert archived_dependency_errors(lab, planted, "# legacy\n", _readmes()) == [
            "guide of lab legacy: the opening must say Optional and that ['split.smi-spec.io'] is archived"
        ]
    else:
        assert len(archived_dependency_errors(lab, planted, guide, _readmes())) == 3, "guide, both READMEs"
