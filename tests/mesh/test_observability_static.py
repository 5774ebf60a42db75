"""Tracing and metrics of both mesh overlays, checked offline on the rendered manifests and DRY_RUN sequences.

- Istio: Telemetry resources (telemetry.istio.io/v1) select the demo profile's `jaeger` provider and map the
  lesson's sampling strategies onto randomSamplingPercentage; the apps export to the same collector.
- Linkerd: the proxies' tracing values, the meshed Jaeger, and the install/uninstall sequence of `make mesh`.
- Both: every Deployment's sampler is the lesson's strategy for its service (observability/jaeger/
  sampling-strategies.json, itself checked against the lesson's numbers and the one service list), the
  Prometheus annotations, and the Jaeger image at the pinned version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.k8svalidate import render
from scripts.k8svalidate.render import versions
from services import topology
from tests.k8s.stubs import REAL_KUBECTL, commands, make, write_stubs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "istio_lesson"
CTX = "kubectl --context kind-shop"
LINKERD = "linkerd --context kind-shop"


def _lesson_strategies() -> dict[str, Any]:
    """The lesson's Jaeger ConfigMap (les 11, "Jaeger Integration", kept verbatim as a fixture): its
    sampling_strategies.json, service "frontend" 1.0, service "backend" 0.8, default_strategy 0.1."""
    config_map = yaml.safe_load((FIXTURES / "jaeger-tracing.yaml").read_text())
    data: dict[str, Any] = json.loads(config_map["data"]["sampling_strategies.json"])
    return data


_LESSON = _lesson_strategies()
_LESSON_RATIOS = {s["service"]: float(s["param"]) for s in _LESSON["service_strategies"]}
# The shop has no service called backend: its seven backends take the lesson's "backend" ratio.
LESSON_FRONTEND, LESSON_BACKEND = _LESSON_RATIOS["frontend"], _LESSON_RATIOS["backend"]
LESSON_DEFAULT = float(_LESSON["default_strategy"]["param"])
Doc = dict[str, Any]

pytestmark = pytest.mark.skipif(REAL_KUBECTL is None, reason="needs kubectl for `kubectl kustomize`")


def _env(deployment: Doc) -> dict[str, str | None]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _deployments(docs: list[Doc]) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"].get("namespace") == topology.NAMESPACE
    ]


def _strategies() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "observability/jaeger/sampling-strategies.json").read_text())
    return data


def sampler_errors(docs: list[Doc]) -> list[str]:
    """Every shop Deployment must sample parent-based with its service's strategy from the strategies file."""
    ratios = {s["service"]: float(s["param"]) for s in _strategies()["service_strategies"]}
    errors = []
    for deployment in _deployments(docs):
        name = deployment["metadata"]["name"]
        app = deployment["spec"]["template"]["metadata"]["labels"]["app"]
        env = _env(deployment)
        if env.get("OTEL_TRACES_SAMPLER") != "parentbased_traceidratio":
            errors.append(f"{name}: OTEL_TRACES_SAMPLER is {env.get('OTEL_TRACES_SAMPLER')!r}")
        arg = env.get("OTEL_TRACES_SAMPLER_ARG")
        if arg is None or float(arg) != ratios.get(app):
            errors.append(
                f"{name}: OTEL_TRACES_SAMPLER_ARG {arg!r}, the strategy of {app} is {ratios.get(app)}"
            )
        if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            errors.append(f"{name}: no OTEL_EXPORTER_OTLP_ENDPOINT, its spans go nowhere")
    return errors


def test_the_strategies_file_is_the_lessons_strategies_for_every_service() -> None:
    expected = {
        "service_strategies": [
            {
                "service": s,
                "type": "probabilistic",
                "param": LESSON_FRONTEND if s == "frontend" else LESSON_BACKEND,
            }
            for s in topology.SERVICES
        ],
        "default_strategy": {"type": "probabilistic", "param": LESSON_DEFAULT},
    }
    assert _strategies() == expected, "regenerate it:\n" + json.dumps(expected, indent=2)


@pytest.mark.parametrize("overlay", ["mesh/istio/overlay", "mesh/linkerd/overlay"])
def test_every_deployment_samples_with_its_services_strategy_and_exports(overlay: str) -> None:
    docs = render(overlay)
    assert len(_deployments(docs)) == len(topology.SERVICES) + 3  # + product-canary and two frontend variants
    assert sampler_errors(docs) == []


def test_a_planted_wrong_ratio_or_missing_sampler_is_caught() -> None:
    docs = render("mesh/istio/overlay")
    payment = next(d for d in _deployments(docs) if d["metadata"]["name"] == "payment")
    container = payment["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:
        if env["name"] == "OTEL_TRACES_SAMPLER_ARG":
            env["value"] = "1.0"  # payment copying the frontend's ratio
    frontend = next(d for d in _deployments(docs) if d["metadata"]["name"] == "frontend")
    frontend_container = frontend["spec"]["template"]["spec"]["containers"][0]
    frontend_container["env"] = [e for e in frontend_container["env"] if e["name"] != "OTEL_TRACES_SAMPLER"]
    errors = sampler_errors(docs)
    assert errors == [
        "frontend: OTEL_TRACES_SAMPLER is None",
        "payment: OTEL_TRACES_SAMPLER_ARG '1.0', the strategy of payment is 0.8",
    ]


@pytest.mark.parametrize("overlay", ["mesh/istio/overlay", "mesh/linkerd/overlay"])
def test_every_pod_is_annotated_for_prometheus_on_its_http_port(overlay: str) -> None:
    for deployment in _deployments(render(overlay)):
        template = deployment["spec"]["template"]
        annotations = template["metadata"].get("annotations", {})
        ports = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert annotations.get("prometheus.io/scrape") == "true", deployment["metadata"]["name"]
        assert annotations.get("prometheus.io/path") == "/metrics"
        assert int(annotations["prometheus.io/port"]) in ports, (deployment["metadata"]["name"], ports)


# --- Istio ----------------------------------------------------------------------------------------------


def _telemetries() -> dict[tuple[str, str], Doc]:
    return {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in render("mesh/istio/overlay")
        if d["kind"] == "Telemetry"
    }


def test_istio_telemetry_selects_the_demo_jaeger_provider_with_the_lessons_percentages() -> None:
    telemetries = _telemetries()
    for telemetry in telemetries.values():
        assert telemetry["apiVersion"] == "telemetry.istio.io/v1"
        assert [p["name"] for p in telemetry["spec"]["tracing"][0]["providers"]] == ["jaeger"]
    percent = {key: t["spec"]["tracing"][0]["randomSamplingPercentage"] for key, t in telemetries.items()}
    selectors = {key: t["spec"].get("selector", {}).get("matchLabels") for key, t in telemetries.items()}
    assert percent[("istio-system", "mesh-default")] == LESSON_DEFAULT * 100
    assert selectors[("istio-system", "mesh-default")] is None  # root namespace, no selector: mesh-wide
    assert percent[("istio-system", "ingress-gateway")] == LESSON_FRONTEND * 100
    assert selectors[("istio-system", "ingress-gateway")] == {"istio": "ingressgateway"}
    assert percent[("ecommerce", "shop-backends")] == LESSON_BACKEND * 100
    assert selectors[("ecommerce", "shop-backends")] is None
    assert percent[("ecommerce", "frontend")] == LESSON_FRONTEND * 100
    assert selectors[("ecommerce", "frontend")] == {"app": "frontend"}


def test_the_demo_profile_defines_the_jaeger_provider_the_telemetry_names() -> None:
    """istio-kind.yaml keeps the demo profile (whose meshConfig defines `jaeger`) and does not replace its
    extensionProviders list; the apps export to that provider's collector Service."""
    operator = yaml.safe_load((ROOT / "mesh/istio/install/istio-kind.yaml").read_text())
    assert operator["spec"]["profile"] == "demo"
    assert "extensionProviders" not in operator["spec"].get("meshConfig", {})
    endpoints = {_env(d)["OTEL_EXPORTER_OTLP_ENDPOINT"] for d in _deployments(render("mesh/istio/overlay"))}
    assert endpoints == {"http://jaeger-collector.istio-system.svc.cluster.local:4318"}


def test_istio_apps_export_around_their_sidecar() -> None:
    for deployment in _deployments(render("mesh/istio/overlay")):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["traffic.sidecar.istio.io/excludeOutboundPorts"] == "4318"


# --- Linkerd --------------------------------------------------------------------------------------------


def test_linkerd_proxies_trace_to_the_meshed_jaeger_of_the_pinned_version() -> None:
    values = yaml.safe_load((ROOT / "mesh/linkerd/install/tracing-values.yaml").read_text())["proxy"][
        "tracing"
    ]
    docs = render("mesh/linkerd/jaeger")
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert values["enabled"] is True
    host, port = values["collector"]["endpoint"].rsplit(":", 1)
    service, ns = host.split(".")[:2]
    assert ns == namespace["metadata"]["name"] == "linkerd-jaeger"
    assert namespace["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert int(port) in {p["port"] for p in services[service]["spec"]["ports"]}
    assert values["collector"]["meshIdentity"] == {
        "serviceAccountName": deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "namespace": "linkerd-jaeger",
    }
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"jaegertracing/jaeger:{versions()['JAEGER'].removeprefix('v')}"
    endpoints = {_env(d)["OTEL_EXPORTER_OTLP_ENDPOINT"] for d in _deployments(render("mesh/linkerd/overlay"))}
    assert endpoints == {f"http://{service}.linkerd-jaeger.svc.cluster.local:4318"}
    assert 4318 in {p["port"] for p in services[service]["spec"]["ports"]}


def test_the_cluster_jaeger_serves_the_lessons_sampling_strategies() -> None:
    docs = render("mesh/linkerd/jaeger")
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert json.loads(config_map["data"]["sampling-strategies.json"]) == _strategies()
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config["extensions"]["remote_sampling"]["file"]["path"] == "/etc/jaeger/sampling-strategies.json"


def test_viz_prometheus_scrapes_the_shop_by_its_annotations() -> None:
    values = yaml.safe_load((ROOT / "mesh/linkerd/install/viz-values.yaml").read_text())
    (job,) = values["prometheus"]["scrapeConfigs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [topology.NAMESPACE]}}]
    keep = job["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep"
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"__address__", "__metrics_path__", "app", "version", "namespace", "pod"} <= targets


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    return write_stubs(tmp_path / "stubs")


def test_make_mesh_linkerd_installs_tracing_then_jaeger_then_viz(stubs: Path) -> None:
    proc = make(stubs, "mesh", "MESH=linkerd", STUB_CLUSTERS="shop")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    sequence = [
        f"{LINKERD} install --crds | {CTX} apply -f -",
        f"{LINKERD} install --values {ROOT}/mesh/linkerd/install/tracing-values.yaml | {CTX} apply -f -",
        f"{LINKERD} check",
        f"{CTX} apply -k {ROOT}/mesh/linkerd/jaeger",
        f"{CTX} -n linkerd-jaeger rollout status deployment/jaeger --timeout=300s",
        f"{LINKERD} viz install --values {ROOT}/mesh/linkerd/install/viz-values.yaml | {CTX} apply -f -",
        f"{CTX} apply --openapi-patch=false -k {ROOT}/.cache/app/linkerd",
    ]
    positions = [cmds.index(c) for c in sequence]
    assert positions == sorted(positions), cmds


def test_make_mesh_away_from_linkerd_deletes_jaeger_before_linkerd(stubs: Path) -> None:
    proc = make(stubs, "mesh", "MESH=none", STUB_CLUSTERS="shop", STUB_MESH="linkerd")
    assert proc.returncode == 0, proc.stderr
    cmds = commands(proc)
    delete = f"{CTX} delete -k {ROOT}/mesh/linkerd/jaeger --ignore-not-found"
    uninstall = f"{LINKERD} uninstall --force | {CTX} delete -f -"
    assert delete in cmds and uninstall in cmds
    assert cmds.index(delete) < cmds.index(uninstall)


def test_grafana_may_read_viz_prometheus_and_a_planted_wrong_identity_is_caught() -> None:
    from scripts.k8svalidate.linkerd import authorization_errors

    docs = render("mesh/linkerd/grafana")
    assert authorization_errors(docs) == []
    policy = next(d for d in docs if d["kind"] == "AuthorizationPolicy")
    policy["spec"]["requiredAuthenticationRefs"][0]["namespace"] = "linkerd-viz"  # not where Grafana runs
    assert authorization_errors(docs) == [
        "AuthorizationPolicy grafana: ServiceAccount 'grafana' does not exist"
    ]
