"""Reading rendered Kubernetes documents: names, kinds, pod templates. Shared by every checker."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


def ns(doc: Doc) -> str:
    """The document's namespace (`default` when it names none)."""
    return str((doc.get("metadata") or {}).get("namespace") or "default")


def name(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def labels(doc: Doc) -> dict[str, str]:
    return dict((doc.get("metadata") or {}).get("labels") or {})


def group(doc: Doc) -> str:
    """API group of a document: `networking.istio.io` for `networking.istio.io/v1`, '' for core `v1`."""
    api = str(doc.get("apiVersion", ""))
    return api.split("/")[0] if "/" in api else ""


def key(doc: Doc) -> tuple[str, str, str]:
    """(kind, namespace, name): what identifies an object in a cluster (for our kinds)."""
    return (str(doc.get("kind")), ns(doc), name(doc))


def find(docs: Iterable[Doc], kind: str, api_group: str | None = None) -> list[Doc]:
    """Documents of one kind (and, when given, one API group)."""
    return [d for d in docs if d.get("kind") == kind and (api_group is None or group(d) == api_group)]


def index(docs: Iterable[Doc], kind: str, api_group: str | None = None) -> dict[tuple[str, str], Doc]:
    """(namespace, name) -> document, for one kind."""
    return {(ns(d), name(d)): d for d in find(docs, kind, api_group)}


def selects(match_labels: dict[str, str], pod_labels: dict[str, str]) -> bool:
    """A label selector's matchLabels select a pod with these labels."""
    return all(pod_labels.get(k) == v for k, v in match_labels.items())


def pod_templates(doc: Doc) -> list[Doc]:
    """Pod templates (metadata + spec) of a workload document; [] for any other kind."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return [spec.get("template") or {}]
    if kind == "CronJob":
        return [((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}]
    if kind == "Pod":
        return [doc]
    return []


@dataclass(frozen=True)
class Pods:
    """The pods one workload template makes: where, with which labels, and their spec."""

    workload: Doc
    ns: str
    labels: dict[str, str]
    spec: Doc

    @property
    def containers(self) -> list[Doc]:
        return list(self.spec.get("containers") or [])

    def port(self, port: int | str) -> Doc | None:
        """The container port with this number or name, or None."""
        for c in self.containers:
            for p in c.get("ports") or []:
                if port in (p.get("containerPort"), p.get("name")):
                    return dict(p)
        return None


def workload_pods(docs: Iterable[Doc]) -> list[Pods]:
    """Every pod template of every workload in the documents."""
    return [
        Pods(d, ns(d), dict((t.get("metadata") or {}).get("labels") or {}), t.get("spec") or {})
        for d in docs
        for t in pod_templates(d)
    ]
