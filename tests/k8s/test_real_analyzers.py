"""The real analyzers of `make validate` (scripts/k8svalidate/analyzers.py) catch planted mistakes.

Each test plants one mistake into the rendered manifests and runs the same code `make validate` runs, with the
pinned tools `make tools` installed (make test runs it first). Outside CI a tool that is not installed yet
skips the test, saying so; in CI nothing skips.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.k8svalidate import analyzers, istio_analyze
from scripts.k8svalidate.findings import Allowed, Finding, load_allowlist, split
from scripts.k8svalidate.kind_config import kind_config_findings
from scripts.k8svalidate.render import REPO_ROOT, render
from scripts.k8svalidate.tools import ToolMissing, tool

Doc = dict[str, Any]


def need(*names: str) -> None:
    try:
        for name in names:
            tool(name)
    except ToolMissing as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def overlay() -> list[Doc]:
    return render("mesh/istio/overlay")


def virtual_service(name: str, http: list[Doc], gateways: list[str] | None = None) -> Doc:
    spec: Doc = {"hosts": ["product"], "http": http}
    if gateways:
        spec["gateways"] = gateways
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "ecommerce"},
        "spec": spec,
    }


def split_route(port: int | None = None) -> list[Doc]:
    def dest(subset: str, weight: int) -> Doc:
        d: Doc = {"host": "product", "subset": subset}
        if port:
            d["port"] = {"number": port}
        return {"destination": d, "weight": weight}

    return [{"route": [dest("stable", 90), dest("canary", 10)]}]


def codes(findings: list[Finding], resource: str) -> set[str]:
    return {f.code for f in findings if f.resource == resource}


def test_canary_gateway_mistake_fails_make_validate_with_ist0112(
    overlay: list[Doc], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The canary lab's old mistake: a gateway-bound VirtualService whose destinations name no port, to
    product, which has two ports (3000, 9000). At the gateway Istio routes to clusters that do not exist."""
    need("istioctl", "istio-analyze")
    mistake = virtual_service("product", split_route(), ["mesh", "ecommerce-gateway"])
    planted = [*copy.deepcopy(overlay), mistake]
    monkeypatch.setattr(analyzers, "istio_entries", lambda: [("planted/canary", planted)])
    assert analyzers.main(["istio-analyze"]) == 1
    out = capsys.readouterr().out
    assert "FAIL istio-analyze" in out
    assert "IST0112 (Error) VirtualService ecommerce/product [planted/canary]" in out


def test_the_same_route_with_a_port_passes(overlay: list[Doc]) -> None:
    need("istioctl", "istio-analyze")
    fixed = [*copy.deepcopy(overlay), virtual_service("product", split_route(3000), ["mesh"])]
    findings = istio_analyze.analyze(fixed, "fixed")
    assert "IST0112" not in codes(findings, "VirtualService ecommerce/product")


def test_two_virtual_services_for_one_host_are_ist0109(overlay: list[Doc]) -> None:
    need("istioctl", "istio-analyze")
    planted = [
        *copy.deepcopy(overlay),
        virtual_service("product-header", split_route(3000)),
        virtual_service("product-cookie", split_route(3000)),
    ]
    findings = istio_analyze.analyze(planted, "planted")
    assert {"IST0109"} <= codes(findings, "VirtualService ecommerce/product-header") | codes(
        findings, "VirtualService ecommerce/product-cookie"
    )


def test_a_subset_whose_labels_match_no_pod_is_ist0173(overlay: list[Doc]) -> None:
    need("istioctl", "istio-analyze")
    planted = copy.deepcopy(overlay)
    rule = next(d for d in planted if d["kind"] == "DestinationRule" and d["metadata"]["name"] == "product")
    rule["spec"]["subsets"].append({"name": "v3", "labels": {"version": "v3"}})
    findings = istio_analyze.analyze(planted, "planted")
    assert "IST0173" in codes(findings, "DestinationRule ecommerce/product")
    # The real subsets select the real pods (product, product-canary): no finding without the plant.
    assert "IST0173" not in codes(istio_analyze.analyze(copy.deepcopy(overlay), "overlay"), rule_name(rule))


def rule_name(doc: Doc) -> str:
    return f"{doc['kind']} {doc['metadata']['namespace']}/{doc['metadata']['name']}"


def test_analyze_sees_the_sidecars_and_pods_a_cluster_would_have(overlay: list[Doc]) -> None:
    need("istioctl")
    injected = istio_analyze.inject(copy.deepcopy(overlay))
    pods = istio_analyze.pods_of(injected)
    product = next(p for p in pods if p["metadata"]["name"] == "product-0")
    assert "istio-proxy" in {c["name"] for c in product["spec"]["containers"]}
    assert product["metadata"]["labels"]["app"] == "product"
    assert product["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"  # added by the injection


def test_manifest_generate_renders_valid_with_the_kind_node_ports() -> None:
    need("istioctl")
    assert istio_analyze.manifest_findings() == []
    gateway = istio_analyze._find(istio_analyze.install_docs(), "Service", "istio-ingressgateway")
    assert gateway is not None
    assert {(p["port"], p.get("nodePort")) for p in gateway["spec"]["ports"]} >= {(80, 30080), (443, 30443)}
    images = {
        c["image"]
        for d in istio_analyze.install_docs()
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images and all(i.endswith(":1.30.3") for i in images), images


def test_a_gateway_without_the_mapped_node_port_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    need("istioctl")
    docs = copy.deepcopy(list(istio_analyze.install_docs()))
    gateway = istio_analyze._find(docs, "Service", "istio-ingressgateway")
    assert gateway is not None
    for port in gateway["spec"]["ports"]:
        port.pop("nodePort", None)
    monkeypatch.setattr(istio_analyze, "install_docs", lambda: tuple(docs))
    findings = istio_analyze.manifest_findings()
    assert {f.code for f in findings} == {"ISTIO-INSTALL-NODEPORT"}
    assert any("nodePort 30080" in f.message for f in findings)


def test_kind_accepts_the_cluster_config() -> None:
    need("kind")
    assert kind_config_findings() == []


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        # a typo (kind's strict decoder), host port 80 mapped twice (kind's validation)
        ("extraPortMapings", "field extraPortMapings not found"),
        ("duplicate-host-port", "port mapping with same listen address, port and protocol"),
    ],
)
def test_kind_rejects_a_planted_mistake(tmp_path: Path, mistake: str, expected: str) -> None:
    need("kind")
    config = yaml.safe_load((REPO_ROOT / "kind" / "cluster.yaml").read_text())
    node = config["nodes"][0]
    if mistake == "extraPortMapings":
        node["extraPortMapings"] = node.pop("extraPortMappings")
    else:
        node["extraPortMappings"].append({**node["extraPortMappings"][0], "containerPort": 30081})
    planted = tmp_path / "cluster.yaml"
    planted.write_text(yaml.safe_dump(config))
    findings = kind_config_findings(planted)
    assert [f.code for f in findings] == ["KIND-CONFIG"]
    assert expected in findings[0].message


def test_allowlist_entries_need_a_reason_and_stale_ones_show(tmp_path: Path) -> None:
    bad = tmp_path / "allowlist.yaml"
    bad.write_text("- {code: IST0112, resource: VirtualService ecommerce/product}\n")
    with pytest.raises(ValueError, match="reason"):
        load_allowlist(bad)
    entry = Allowed("IST0112", "VirtualService ecommerce/*", "planted")
    finding = Finding("istioctl analyze", "IST0112", "Error", "VirtualService ecommerce/product", "m", "e")
    assert split([finding], [entry]) == ([], [finding], {entry})
    assert split([], [entry]) == ([], [], set())
    assert load_allowlist() is not None  # the repo's own list parses
