"""Istio is installed the way mesh/istio/install.sh promises (make verify MESH=istio)."""

from __future__ import annotations

from typing import Any


def test_gateway_is_a_nodeport_on_the_kind_mappings(core_v1: Any) -> None:
    svc = core_v1.read_namespaced_service("istio-ingressgateway", "istio-system")
    assert svc.spec.type == "NodePort"
    node_ports = {p.name: p.node_port for p in svc.spec.ports}
    assert (node_ports["http2"], node_ports["https"]) == (30080, 30443)


def test_namespace_is_labelled_and_every_shop_pod_has_a_sidecar(core_v1: Any, namespace: str) -> None:
    ns = core_v1.read_namespace(namespace)
    assert ns.metadata.labels.get("istio-injection") == "enabled"
    pods = core_v1.list_namespaced_pod(namespace, field_selector="status.phase=Running").items
    shop = [p for p in pods if p.metadata.labels.get("app") not in (None, "istio-check", "curl-test")]
    assert shop, "no shop pods running"
    for pod in shop:
        # native sidecar (init container with restartPolicy Always, Istio >= 1.27) or a classic container
        names = [c.name for c in (pod.spec.init_containers or []) + pod.spec.containers]
        assert "istio-proxy" in names, f"{pod.metadata.name} has no istio-proxy: restart it"


def test_frontend_is_not_a_nodeport_under_istio(core_v1: Any, namespace: str) -> None:
    assert core_v1.read_namespaced_service("frontend", namespace).spec.type == "ClusterIP"


def test_addons_run(apps_v1: Any) -> None:
    for name in ("istiod", "istio-ingressgateway", "prometheus", "grafana", "jaeger", "kiali"):
        dep = apps_v1.read_namespaced_deployment(name, "istio-system")
        assert (dep.status.available_replicas or 0) >= 1, f"{name} not available"
