"""Istio's own tools on the Istio overlay: `istioctl manifest generate` and Istio's analyzers.

manifest generate renders mesh/istio/install/istio-kind.yaml exactly as `istioctl install` would apply it
(images of the pinned release); the result must validate strictly and expose the NodePorts kind maps.

Istio's analyzers (the library `istioctl analyze` runs, as `istio-analyze`, scripts/k8svalidate/istioanalyze:
`istioctl analyze --use-kube=false` drops the Services, Pods and Namespaces of files, skipping the analyzers
below) run on each Istio entry point: the overlay alone, each lab on it, all labs together, each canary step.
Their input is what a cluster would hold: the rendered documents; the workloads with the sidecar `istioctl
kube-inject` adds (same injection template, values and mesh config as the install), and one Pod per workload,
since Istio's analyzers look at Pods (labels, ports, ServiceAccounts, sidecars); the install's own Services,
Deployments and Pods in istio-system (the ingress gateway the Gateway selects). So they see what schemas
cannot: a multi-port destination without a port (IST0112), two VirtualServices for one host (IST0109), a
subset that selects no pod (IST0173), references to missing hosts, subsets, gateways and secrets (IST0101).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from scripts.k8svalidate.findings import Finding
from scripts.k8svalidate.render import REPO_ROOT, entry_points, render, versions
from scripts.k8svalidate.schemas import describe, validate_docs
from scripts.k8svalidate.tools import run

Doc = dict[str, Any]
ANALYZE = "istio-analyze"
MANIFEST = "istioctl manifest generate"
INSTALL_FILE = REPO_ROOT / "mesh" / "istio" / "install" / "istio-kind.yaml"
KIND_CONFIG = REPO_ROOT / "kind" / "cluster.yaml"
ISTIO_NS = "istio-system"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# What the analyzers need of the install: the ingress gateway's Service and Pods (Gateway selectors),
# istiod's (mesh-wide settings).
_INSTALL_KINDS = {"Service", "Deployment", "ServiceAccount", "ConfigMap"}


class AnalyzerError(RuntimeError):
    """An Istio tool failed to run or printed something unreadable (not a finding about our files)."""


def _docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _dump(docs: Iterable[Doc]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


@cache
def install_docs() -> tuple[Doc, ...]:
    """`istioctl manifest generate` of the install file, images tagged with the pinned release."""
    res = run(
        "istioctl",
        "manifest",
        "generate",
        "-f",
        str(INSTALL_FILE),
        "--set",
        "hub=docker.io/istio",
        "--set",
        f"tag={versions()['ISTIO']}",
        timeout=300,
    )
    if res.returncode != 0:
        raise AnalyzerError(f"istioctl manifest generate failed: {res.stderr.strip()[-800:]}")
    return tuple(_docs(res.stdout))


def istioctl_version() -> str:
    """ "istioctl <version> (<revision>)": a source build names its commit (docs/tools.md)."""
    res = run("istioctl", "version", "--remote=false", "-o", "json", timeout=60)
    try:
        info = json.loads(res.stdout)["clientVersion"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"istioctl {(res.stdout or res.stderr).strip()[:80]}"
    return f"istioctl {info.get('version', '?')} ({str(info.get('revision', '?'))[:12]})"


def _find(docs: Iterable[Doc], kind: str, name: str, namespace: str = ISTIO_NS) -> Doc | None:
    for d in docs:
        meta = d.get("metadata") or {}
        if (
            d.get("kind") == kind
            and meta.get("name") == name
            and meta.get("namespace", namespace) == namespace
        ):
            return d
    return None


def _kind_mapped_node_ports() -> set[int]:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    return {
        int(m["containerPort"])
        for node in config.get("nodes") or []
        for m in node.get("extraPortMappings") or []
    }


def manifest_findings() -> list[Finding]:
    """The install renders, validates strictly, and its ingress gateway has the NodePorts kind maps."""
    entry = INSTALL_FILE.relative_to(REPO_ROOT).as_posix()

    def finding(code: str, resource: str, message: str) -> Finding:
        return Finding(MANIFEST, code, "Error", resource, message, entry)

    try:
        docs = list(install_docs())
    except AnalyzerError as exc:
        return [finding("ISTIO-INSTALL-RENDER", f"IstioOperator {entry}", str(exc))]
    out = [
        finding("ISTIO-INSTALL-SCHEMA", err.split(":", 1)[0], err.split(":", 1)[-1].strip())
        for err in validate_docs(docs)
    ]
    gateway = _find(docs, "Service", "istio-ingressgateway")
    if gateway is None:
        return [
            *out,
            finding("ISTIO-INSTALL-NODEPORT", f"Service {ISTIO_NS}/istio-ingressgateway", "not rendered"),
        ]
    spec = gateway.get("spec") or {}
    ports = {p.get("nodePort"): p for p in spec.get("ports") or [] if p.get("nodePort")}
    resource = describe(gateway)
    if spec.get("type") != "NodePort":
        out.append(finding("ISTIO-INSTALL-NODEPORT", resource, f"type is {spec.get('type')}, not NodePort"))
    for node_port, (port, target) in {30080: (80, 8080), 30443: (443, 8443)}.items():
        p = ports.get(node_port)
        if p is None or (p.get("port"), p.get("targetPort")) != (port, target):
            out.append(
                finding(
                    "ISTIO-INSTALL-NODEPORT",
                    resource,
                    f"no port {port} -> {target} on nodePort {node_port} (kind maps host port {port} to it)",
                )
            )
    for node_port in sorted(set(ports) - _kind_mapped_node_ports()):
        out.append(
            finding(
                "ISTIO-INSTALL-NODEPORT", resource, f"nodePort {node_port} is not mapped in kind/cluster.yaml"
            )
        )
    for node_port in sorted({30080, 30443} - _kind_mapped_node_ports()):
        out.append(
            finding(
                "ISTIO-INSTALL-NODEPORT",
                "kind Cluster kind/cluster.yaml",
                f"does not map nodePort {node_port}",
            )
        )
    return out


@cache
def _inject_files() -> tuple[str, str, str]:
    """(injection template, values, mesh config) files of the install, for kube-inject and analyze."""
    docs = install_docs()
    injector = _find(docs, "ConfigMap", "istio-sidecar-injector")
    mesh = _find(docs, "ConfigMap", "istio")
    if injector is None or mesh is None:
        raise AnalyzerError("manifest generate rendered no istio-sidecar-injector / istio ConfigMap")
    folder = Path(tempfile.mkdtemp(prefix="istio-analyze-"))
    files = []
    for name, text in (
        ("inject-config.yaml", injector["data"]["config"]),
        ("inject-values.json", injector["data"]["values"]),
        ("mesh.yaml", mesh["data"]["mesh"]),
    ):
        (folder / name).write_text(text)
        files.append(str(folder / name))
    return files[0], files[1], files[2]


def _injected_namespaces(docs: Iterable[Doc]) -> set[str]:
    return {
        (d.get("metadata") or {}).get("name", "")
        for d in docs
        if d.get("kind") == "Namespace"
        and ((d.get("metadata") or {}).get("labels") or {}).get("istio-injection") == "enabled"
    }


def inject(docs: list[Doc]) -> list[Doc]:
    """The documents with `istioctl kube-inject` applied to the workloads of injection-enabled namespaces."""
    namespaces = _injected_namespaces(docs)
    targets = [
        i
        for i, d in enumerate(docs)
        if d.get("kind") in WORKLOAD_KINDS and (d.get("metadata") or {}).get("namespace") in namespaces
    ]
    if not targets:
        return docs
    config, values, mesh = _inject_files()
    res = run(
        "istioctl",
        "kube-inject",
        # An explicit revision: without one istioctl asks a cluster for its default revision.
        "--revision",
        "default",
        "-f",
        "-",
        "--injectConfigFile",
        config,
        "--valuesFile",
        values,
        "--meshConfigFile",
        mesh,
        stdin=_dump(docs[i] for i in targets),
        timeout=120,
    )
    if res.returncode != 0:
        raise AnalyzerError(f"istioctl kube-inject failed: {res.stderr.strip()[-800:]}")
    injected = _docs(res.stdout)
    if len(injected) != len(targets):
        raise AnalyzerError(f"kube-inject returned {len(injected)} workloads for {len(targets)}")
    out = list(docs)
    for i, doc in zip(targets, injected, strict=True):
        out[i] = doc
    return out


def pods_of(docs: Iterable[Doc]) -> list[Doc]:
    """One Pod per workload, from its pod template, as the cluster would run it (for the Pod analyzers)."""
    pods = []
    for d in docs:
        if d.get("kind") not in WORKLOAD_KINDS:
            continue
        meta, template = d.get("metadata") or {}, (d.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{meta.get('name')}-0",
                    "namespace": meta.get("namespace", "default"),
                    "labels": dict(tmeta.get("labels") or {}),
                    "annotations": dict(tmeta.get("annotations") or {}),
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
        )
    return pods


def _control_plane() -> list[Doc]:
    docs = [
        d
        for d in install_docs()
        if d.get("kind") in _INSTALL_KINDS and (d.get("metadata") or {}).get("namespace") == ISTIO_NS
    ]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NS}}
    return [namespace, *docs, *pods_of(docs)]


def analyze(docs: list[Doc], entry: str) -> list[Finding]:
    """`istioctl analyze` findings for rendered documents (an entry point), with sidecars and Pods."""
    app = inject(docs)
    _, _, mesh = _inject_files()
    inputs = [*app, *pods_of(app), *_control_plane()]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="istio-analyze-") as f:
        f.write(_dump(inputs))
        f.flush()
        res = run("istio-analyze", "--meshConfigFile", mesh, f.name, timeout=300)
    try:
        messages = json.loads(res.stdout) if res.stdout.strip() else []
    except json.JSONDecodeError as exc:
        raise AnalyzerError(
            f"istio-analyze ({entry}) printed no JSON: {(res.stdout + res.stderr)[-800:]}"
        ) from exc
    return [
        Finding(
            ANALYZE,
            m.get("code", "?"),
            m.get("level", "?"),
            m.get("origin", "?"),
            m.get("message", ""),
            entry,
        )
        for m in messages
        # The install's own resources are Istio's business, not this repo's.
        if f" {ISTIO_NS}/" not in f" {m.get('origin', '')}"
    ]


def istio_entries() -> list[tuple[str, list[Doc]]]:
    """(name, rendered docs) of every Istio entry point, plus each lab step (labs/<lab>/steps/*.yaml
    replacing the resource of the same kind and name in that lab's rendering)."""
    out: list[tuple[str, list[Doc]]] = []
    for name, dirs in entry_points():
        if not all(d.startswith("mesh/istio/") for d in dirs):
            continue
        docs = render(dirs if len(dirs) > 1 else dirs[0])
        out.append((name, docs))
        if len(dirs) == 1:
            for step in sorted((REPO_ROOT / dirs[0] / "steps").glob("*.yaml")):
                out.append((f"{name}/steps/{step.name}", replace_docs(docs, _docs(step.read_text()))))
    return out


def _key(doc: Doc) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))


def replace_docs(docs: list[Doc], replacements: list[Doc]) -> list[Doc]:
    """docs with each replacement in place of the document of the same kind, namespace and name (or added)."""
    by_key = {_key(r): r for r in replacements}
    out = [by_key.pop(_key(d), d) for d in docs]
    return out + list(by_key.values())
