"""Render every kustomize entry point and validate it strictly, offline.

Public API (used by the mesh overlays' tests too)::

    from scripts.k8svalidate import render, validate_docs, crossref_errors, entry_points, crd_dir

The checkers `make validate` runs are listed by `checks.all_checkers()`: schemas, cross-references, the lab
lifecycle (labs.py) and each mesh's semantics (istio.py, linkerd.py).
"""

from scripts.k8svalidate.crossref import crossref_errors
from scripts.k8svalidate.render import REPO_ROOT, entry_points, render, versions
from scripts.k8svalidate.schemas import crd_dir, k8s_version, validate_docs

__all__ = [
    "REPO_ROOT",
    "crd_dir",
    "crossref_errors",
    "entry_points",
    "k8s_version",
    "render",
    "validate_docs",
    "versions",
]
