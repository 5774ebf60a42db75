"""The manifest validator: every entry point is valid, and planted mistakes are caught."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from scripts.k8svalidate import (
    REPO_ROOT,
    crossref_errors,
    entry_points,
    istio,
    k8s_version,
    linkerd,
    render,
    schemas,
    validate_docs,
)
from scripts.k8svalidate.__main__ import check, main
from scripts.k8svalidate.checks import Target, all_checkers
from scripts.k8svalidate.labs import kubectl_name, lab_kind_errors, lab_kinds, lab_label_errors
from scripts.k8svalidate.render import base_for_component, standalone_labs
from services import topology

Doc = dict[str, Any]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def planted(docs: list[Doc]) -> list[Doc]:
    return copy.deepcopy(docs)


def test_dev_overlay_is_valid(dev_docs: list[Doc]) -> None:
    assert validate_docs(dev_docs) == []
    assert crossref_errors(dev_docs) == []


def test_dev_overlay_has_every_service_and_variant(dev_docs: list[Doc]) -> None:
    deployments = {d["metadata"]["name"] for d in dev_docs if d["kind"] == "Deployment"}
    assert deployments == {
        *topology.SERVICES,
        "product-canary",
        "frontend-mobile-optimized",
        "frontend-beta-features",
    }
    assert all(d["metadata"].get("namespace") == "ecommerce" for d in dev_docs if d["kind"] != "Namespace")
    frontend = find(dev_docs, "Service", "frontend")
    assert frontend["spec"]["type"] == "NodePort"
    assert frontend["spec"]["ports"][0]["nodePort"] == 30080


@pytest.mark.parametrize(("name", "dirs"), entry_points(), ids=[n for n, _ in entry_points()])
def test_every_entry_point_renders_and_validates(name: str, dirs: list[str]) -> None:
    assert check(name, dirs) == []


def test_unknown_field_in_core_kind_fails(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    container = find(docs, "Deployment", "order")["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = "Never"
    errors = validate_docs(docs)
    assert len(errors) == 1
    assert "Deployment ecommerce/order" in errors[0]
    assert ".spec.template.spec.containers.0" in errors[0]
    assert "imagePullPolicyy" in errors[0]


def test_wrong_type_fails(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    find(docs, "Service", "product")["spec"]["ports"][1]["port"] = "nine-thousand"
    errors = validate_docs(docs)
    assert errors and "Service ecommerce/product: .spec.ports.1.port" in errors[0]


def test_unknown_field_in_crd_kind_fails() -> None:
    # The lesson's DestinationRule: `circuitBreaker` is not a field (the API server rejects it).
    bad = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "product", "namespace": "ecommerce"},
        "spec": {"host": "product", "trafficPolicy": {"circuitBreaker": {"simpleCb": {"maxConnections": 1}}}},
    }
    good = copy.deepcopy(bad)
    good["spec"]["trafficPolicy"] = {"outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"}}
    assert validate_docs([good]) == []
    errors = validate_docs([bad])
    assert len(errors) == 1
    assert "DestinationRule ecommerce/product: .spec.trafficPolicy" in errors[0]
    assert "circuitBreaker" in errors[0]


def test_wrong_type_and_enum_in_crd_kind_fail() -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "product", "namespace": "ecommerce"},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": "product", "port": 3000}],
            "rules": [{"backendRefs": [{"name": "product", "port": 3000, "weight": "ninety"}]}],
        },
    }
    errors = validate_docs([route])
    assert any(".spec.rules.0.backendRefs.0.weight" in e for e in errors)


def test_kind_without_schema_is_an_error() -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    errors = validate_docs([doc])
    assert len(errors) == 1 and "no schema for example.com/v1 Widget" in errors[0]


def test_selector_matching_nothing_fails(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    find(docs, "Service", "payment")["spec"]["selector"] = {"app": "paymnet"}
    errors = crossref_errors(docs)
    assert errors == ["Service ecommerce/payment: selector {'app': 'paymnet'} matches no pod template"]


def test_missing_service_account_fails(dev_docs: list[Doc]) -> None:
    docs = [d for d in dev_docs if (d["kind"], d["metadata"]["name"]) != ("ServiceAccount", "user-sa")]
    errors = crossref_errors(docs)
    assert errors == ["Deployment ecommerce/user: ServiceAccount ecommerce/user-sa does not exist"]


def test_unknown_target_port_fails(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    find(docs, "Service", "shipping")["spec"]["ports"][0]["targetPort"] = "web"
    errors = crossref_errors(docs)
    assert len(errors) == 1 and "Service ecommerce/shipping: targetPort web" in errors[0]


def test_probe_on_missing_port_or_path_fails(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    container = find(docs, "Deployment", "auth")["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["port"] = 8081
    container["readinessProbe"]["httpGet"]["path"] = "/ready"
    errors = crossref_errors(docs)
    assert len(errors) == 2
    assert "livenessProbe.httpGet.port 8081" in errors[0]
    assert "readinessProbe.httpGet.path /ready" in errors[1]


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("shop/order:dev", True),
        ("shop/basket:dev", False),
        ("mongo:8.0.17", True),
        ("mongo", False),
        ("mongo:latest", False),
        ("nginx@sha256:" + "a" * 64, True),
        ("localhost:5000/nginx", False),
    ],
)
def test_images_must_be_built_or_pinned(dev_docs: list[Doc], image: str, ok: bool) -> None:
    docs = planted(dev_docs)
    container = find(docs, "StatefulSet", "mongodb")["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    if image.startswith("shop/"):  # (pull policy and VERSION: tests of their own)
        container["imagePullPolicy"] = "Never"
        container["env"].append({"name": "VERSION", "value": "v1"})
    assert (crossref_errors(docs) == []) is ok


@pytest.mark.parametrize("policy", ["IfNotPresent", "Always", None])
def test_shop_images_must_never_be_pulled(dev_docs: list[Doc], policy: str | None) -> None:
    """shop/<service> means docker.io/shop/<service>: a node without the side-loaded image must not pull."""
    docs = planted(dev_docs)
    container = find(docs, "Deployment", "product-canary")["spec"]["template"]["spec"]["containers"][0]
    if policy is None:
        del container["imagePullPolicy"]
    else:
        container["imagePullPolicy"] = policy
    errors = crossref_errors(docs)
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "Deployment ecommerce/product-canary container product: image shop/product:dev"
    )
    assert "imagePullPolicy must be Never" in errors[0]


def test_mongodb_pings_once_at_startup_and_probes_cheaply_after(dev_docs: list[Doc]) -> None:
    container = find(dev_docs, "StatefulSet", "mongodb")["spec"]["template"]["spec"]["containers"][0]
    assert "ping" in " ".join(container["startupProbe"]["exec"]["command"])
    for kind in ("readinessProbe", "livenessProbe"):
        assert container[kind]["exec"]["command"] == ["bash", "-c", "exec 3<>/dev/tcp/$POD_IP/27017"]
        assert container[kind]["failureThreshold"] * container[kind]["periodSeconds"] >= 60, "tolerant"
    assert find(dev_docs, "Service", "mongodb")["spec"]["publishNotReadyAddresses"] is True


def test_the_old_mongodb_readiness_probe_is_caught(dev_docs: list[Doc]) -> None:
    """mongosh (Node.js) every 10 s inside MongoDB's limits: on a busy laptop it timed out."""
    docs = planted(dev_docs)
    container = find(docs, "StatefulSet", "mongodb")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = copy.deepcopy(container["startupProbe"])
    container["livenessProbe"]["timeoutSeconds"] = 1
    errors = crossref_errors(docs)
    assert errors == [
        "StatefulSet ecommerce/mongodb container mongodb: livenessProbe exec probe with timeoutSeconds 1 "
        "(default 1)",
        "StatefulSet ecommerce/mongodb container mongodb: readinessProbe runs mongo, mongosh every period: "
        "do that in a startupProbe instead",
    ]


def test_a_headless_service_that_hides_unready_pods_is_caught(dev_docs: list[Doc]) -> None:
    docs = planted(dev_docs)
    del find(docs, "Service", "mongodb")["spec"]["publishNotReadyAddresses"]
    errors = crossref_errors(docs)
    assert (
        len(errors) == 1 and "Service ecommerce/mongodb: headless Service of StatefulSet mongodb" in errors[0]
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the canary as it was: labelled canary, VERSION=v2, reporting product/v2
        (
            {"label": "canary", "env": {"name": "VERSION", "value": "v2"}},
            "VERSION is v2, but the pod is labelled version: canary",
        ),
        ({"label": None, "env": None}, "pod template has no `version` label"),
        ({"label": "v2", "env": None}, "VERSION is unset"),
        ({"label": "v2", "env": {"name": "VERSION", "value": "v2"}}, None),
    ],
)
def test_one_name_per_version(dev_docs: list[Doc], edit: dict[str, Any], expected: str | None) -> None:
    docs = planted(dev_docs)
    canary = find(docs, "Deployment", "product-canary")
    labels = canary["spec"]["template"]["metadata"]["labels"]
    if edit["label"] is None:
        del labels["version"]
    else:
        labels["version"] = edit["label"]
    container = canary["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "VERSION"] + (
        [edit["env"]] if edit["env"] else []
    )
    errors = [e for e in crossref_errors(docs) if "product-canary container" in e]
    if expected is None:
        assert errors == []
    else:
        assert len(errors) == 1 and expected in errors[0], errors


def test_cli_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s/overlays/dev"]) == 0
    out = capsys.readouterr().out
    assert "ok   k8s/overlays/dev" in out and "1/1 entry points valid" in out
    assert main(["no-such-entry"]) == 1


def test_cli_prints_every_checker_it_ran_with_its_findings(capsys: pytest.CaptureFixture[str]) -> None:
    """What a student sees: each checker, on how many entry points it ran, and how many findings."""
    assert main(["istio/lab/canary", "linkerd/lab/security"]) == 0
    out = capsys.readouterr().out
    summary = out.split("checker ", 1)[1].splitlines()[1:]
    table = {ln.split()[0]: ln.split()[1:] for ln in summary if ln.strip()}
    for name in ("validate_docs", "crossref_errors", "labs.lab_label_errors"):
        assert table[name] == ["2", "0"], (name, out)
    for name in ("istio.subset_errors", "linkerd.contract_errors"):
        assert table[name] == ["1", "0"], (name, out)
    assert table["istio.missing_calls"] == ["0", "0"], "no AuthorizationPolicy in the canary lab: not run"
    assert "2/2 entry points valid, 0 findings" in out


def test_every_mesh_checker_runs_in_make_validate() -> None:
    """The checkers the mesh tests plant mistakes for are the ones `make validate` runs (none test-only)."""
    registered = {c.name for c in all_checkers()}
    for fn in istio.SEMANTIC_CHECKS:
        assert f"istio.{fn.__name__}" in registered
    assert {"istio.tls_secret_errors", "istio.missing_calls", "labs.lab_label_errors"} <= registered
    for fn in (
        linkerd.route_ref_errors,
        linkerd.server_errors,
        linkerd.meshtls_errors,
        linkerd.authorization_errors,
        linkerd.server_route_kind_errors,
        linkerd.profile_conflicts,
        linkerd.mongodb_server_errors,
        linkerd.contract_errors,
    ):
        assert f"linkerd.{fn.__name__}" in registered


def test_a_planted_mesh_mistake_fails_its_entry_point_naming_the_checker() -> None:
    docs = render("mesh/istio/labs/canary")
    vs = find(docs, "VirtualService", "product")
    vs["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v3"
    target = Target("istio/lab/canary", ("mesh/istio/labs/canary",), docs)
    found = {c.name: c.run(target) for c in all_checkers() if c.applies(target)}
    assert [n for n, f in found.items() if f] == ["istio.subset_errors"]
    assert "linkerd.route_ref_errors" not in found, "Linkerd checkers do not run on Istio entry points"


def test_entry_points_cover_every_lab_and_honour_standalone() -> None:
    points = dict(entry_points())
    assert points["k8s/overlays/dev"] == ["k8s/overlays/dev"]
    assert "k8s/components/variants" not in points  # components are rendered through the overlays
    for mesh_dir in sorted(p for p in (REPO_ROOT / "mesh").glob("*") if (p / "labs").is_dir()):
        labs = sorted(p.parent.name for p in (mesh_dir / "labs").glob("*/kustomization.yaml"))
        for lab in labs:
            assert points[f"{mesh_dir.name}/lab/{lab}"] == [f"mesh/{mesh_dir.name}/labs/{lab}"]
        standalone = standalone_labs(mesh_dir)
        together = [f"mesh/{mesh_dir.name}/labs/{lab}" for lab in labs if lab not in standalone]
        if len(together) > 1:
            assert points[f"{mesh_dir.name}/all-labs"] == together


def test_several_components_render_on_their_mesh_overlay() -> None:
    labs = sorted((REPO_ROOT / "mesh" / "linkerd" / "labs").glob("*/kustomization.yaml"))[:2]
    if len(labs) < 2:
        pytest.skip("fewer than two Linkerd labs written yet")
    dirs = [str(p.parent.relative_to(REPO_ROOT)) for p in labs]
    overlay = {(d["kind"], d["metadata"]["name"]) for d in render("mesh/linkerd/overlay")}
    both = {(d["kind"], d["metadata"]["name"]) for d in render(dirs)}
    assert overlay < both


def test_components_of_different_meshes_are_refused() -> None:
    istio = sorted((REPO_ROOT / "mesh" / "istio" / "labs").glob("*/kustomization.yaml"))
    linkerd = sorted((REPO_ROOT / "mesh" / "linkerd" / "labs").glob("*/kustomization.yaml"))
    if not istio or not linkerd:
        pytest.skip("needs one lab of each mesh")
    with pytest.raises(ValueError, match="different overlays"):
        render([str(istio[0].parent), str(linkerd[0].parent)])


def test_lab_resources_without_lab_label_are_reported() -> None:
    """A resource a lab adds (not one it only patches) without `lab: <lab>` is reported."""
    for kust in sorted((REPO_ROOT / "mesh").glob("*/labs/*/kustomization.yaml")):
        lab_dir, lab = str(kust.parent.relative_to(REPO_ROOT)), kust.parent.name
        docs = render(lab_dir)
        base = render(str(base_for_component(lab_dir)))
        assert lab_label_errors(lab, docs, base) == []
        before = {(d["kind"], d["metadata"]["name"]) for d in base}
        added = [d for d in docs if (d["kind"], d["metadata"]["name"]) not in before]
        if added:
            del added[0]["metadata"]["labels"]["lab"]
            errors = lab_label_errors(lab, docs, base)
            assert len(errors) == 1 and f"has no label lab: {lab}" in errors[0]
            return
    pytest.skip("no lab adds a resource yet")


def test_every_kind_a_lab_adds_is_in_the_one_list_of_lab_kinds() -> None:
    """mesh/lab-kinds.txt is what make lab-reset and a mesh switch delete (scripts/labs.sh)."""
    kinds = lab_kinds()
    security = render("mesh/linkerd/labs/security")
    base = render("mesh/linkerd/overlay")
    assert lab_kind_errors("security", security, base, kinds) == []
    errors = lab_kind_errors("security", security, base, kinds - {"servers.policy.linkerd.io"})
    assert errors and all("adds a servers.policy.linkerd.io but mesh/lab-kinds.txt" in e for e in errors)
    assert len(errors) == len([d for d in security if d["kind"] == "Server"])
    names = {kubectl_name(d) for d in security if d["kind"] in ("Server", "GRPCRoute", "Namespace")}
    assert names == {"servers.policy.linkerd.io", "grpcroutes.gateway.networking.k8s.io", "namespaces"}


def test_lab_kinds_are_read_by_the_lab_scripts_not_written_out_again() -> None:
    """One list: scripts/labs.sh reads mesh/lab-kinds.txt; no script spells a list of lab kinds itself."""
    labs_sh = (REPO_ROOT / "scripts" / "labs.sh").read_text()
    assert 'LAB_KINDS_FILE="$ROOT/mesh/lab-kinds.txt"' in labs_sh
    scripts = [*REPO_ROOT.glob("scripts/*.sh"), *REPO_ROOT.glob("mesh/**/*.sh")]
    for script in scripts:
        text = script.read_text()
        spelled = [k for k in lab_kinds() if "." in k and k in text]
        assert len(spelled) <= 1, f"{script.relative_to(REPO_ROOT)} lists lab kinds itself: {spelled}"


def test_missing_crds_give_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(schemas, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match="run `make crds`"):
        schemas.crd_dir()


def test_core_schemas_follow_the_kind_node_version() -> None:
    assert k8s_version() == "1.35.0"


@pytest.mark.parametrize(
    ("overlay", "frontend_nodeport"),
    [("k8s/overlays/dev", 30080), ("mesh/linkerd/overlay", 30080), ("mesh/istio/overlay", None)],
)
def test_exactly_one_owner_of_the_kind_entry_nodeport(overlay: str, frontend_nodeport: int | None) -> None:
    """kind maps host port 80 to NodePort 30080: the frontend owns it, except with Istio (the gateway)."""
    node_ports = {
        (d["metadata"]["name"], p.get("nodePort"))
        for d in render(overlay)
        if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
        for p in d["spec"]["ports"]
    }
    expected = {("frontend", frontend_nodeport)} if frontend_nodeport else set()
    assert node_ports == expected
