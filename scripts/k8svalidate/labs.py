"""Checks of the lab lifecycle both meshes share (`make lab`, `make lab-reset`, scripts/labs.sh)."""

from __future__ import annotations

from functools import cache

import yaml

from scripts.k8svalidate.checks import Checker, Target
from scripts.k8svalidate.render import REPO_ROOT
from scripts.k8svalidate.resources import Doc, group, key, labels
from scripts.k8svalidate.schemas import crd_dir, describe

LAB_KINDS_FILE = REPO_ROOT / "mesh" / "lab-kinds.txt"
# Core kinds a lab may add: kubectl's plural names.
CORE_PLURALS = {"Deployment": "deployments", "Service": "services", "ConfigMap": "configmaps"}
CORE_PLURALS |= {"ServiceAccount": "serviceaccounts", "Secret": "secrets", "StatefulSet": "statefulsets"}
CORE_PLURALS |= {"Pod": "pods", "Job": "jobs", "CronJob": "cronjobs", "DaemonSet": "daemonsets"}
CORE_PLURALS |= {"NetworkPolicy": "networkpolicies", "Role": "roles", "RoleBinding": "rolebindings"}


def lab_label_errors(lab: str, docs: list[Doc], base_docs: list[Doc]) -> list[str]:
    """Every resource a lab ADDS (not one it only patches) carries `lab: <lab>`.

    `make lab-reset` deletes lab resources by that label; an unlabelled one would outlive the reset.
    `docs` are the lab rendered on its mesh overlay, `base_docs` the overlay alone.
    """
    before = {key(d) for d in base_docs}
    return [
        f"{describe(d)}: added by lab {lab} but has no label lab: {lab}"
        for d in docs
        if key(d) not in before and labels(d).get("lab") != lab
    ]


def lab_kinds() -> set[str]:
    """The kinds of mesh/lab-kinds.txt (`plural.group`, core kinds without a group)."""
    lines = (ln.strip() for ln in LAB_KINDS_FILE.read_text().splitlines())
    return {ln for ln in lines if ln and not ln.startswith("#")}


@cache
def _crd_plurals() -> dict[tuple[str, str], str]:
    """(group, kind) -> plural, from the real CRDs."""
    out = {}
    for f in sorted(crd_dir().rglob("*.y*ml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                out[(spec["group"], spec["names"]["kind"])] = spec["names"]["plural"]
    return out


def kubectl_name(doc: Doc) -> str:
    """The name `kubectl get` knows a document's kind by: `plural.group`, or the plural of a core kind."""
    api_group, kind = group(doc), str(doc.get("kind"))
    if api_group in ("", "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"):
        return CORE_PLURALS.get(kind, kind.lower() + "s")
    plural = _crd_plurals().get((api_group, kind), kind.lower() + "s")
    return f"{plural}.{api_group}"


def lab_kind_errors(lab: str, docs: list[Doc], base_docs: list[Doc], kinds: set[str]) -> list[str]:
    """Every kind a lab ADDS is in mesh/lab-kinds.txt, the one list make lab-reset and a mesh switch delete.

    A kind missing there would be applied by `make lab` and never deleted by `make lab-reset` (and a lab
    applied with it would not be found again when the next lab is applied). Namespaces are deleted by their
    `lab` label separately.
    """
    before = {key(d) for d in base_docs}
    return [
        f"{describe(d)}: lab {lab} adds a {kubectl_name(d)} but mesh/lab-kinds.txt does not list it "
        "(make lab-reset would leave it behind)"
        for d in docs
        if key(d) not in before and d.get("kind") != "Namespace" and kubectl_name(d) not in kinds
    ]


def _one_lab(target: Target) -> bool:
    return len(target.labs) == 1 and len(target.dirs) == 1


CHECKERS = [
    Checker(
        "labs.lab_label_errors",
        lambda t: lab_label_errors(t.labs[0], t.docs, t.base_docs()),
        when=_one_lab,
    ),
    Checker(
        "labs.lab_kind_errors",
        lambda t: lab_kind_errors(t.labs[0], t.docs, t.base_docs(), lab_kinds()),
        when=_one_lab,
    ),
]
