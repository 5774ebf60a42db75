"""Planted mistakes that only a real API server rejects, and a copy of the repo to plant them in.

Each mistake is a one-line change to a real lab file, of a kind `make validate`'s schema and cross-reference
checks cannot see (they evaluate no CEL rule, know no live object, and check no namespace against a cluster):

| mistake | what refuses it |
|---|---|
| an HTTPRoute filter of type RequestHeaderModifier setting responseHeaderModifier | Gateway API CEL rule |
| a VirtualService retry perTryTimeout below 1 ms | Istio's CEL rule ("a valid duration greater than 1ms") |
| a lab that changes a Deployment's selector, applied over the running shop | spec.selector is immutable |
| a lab object in a namespace nobody creates | the NamespaceLifecycle admission plugin |

`PlantedRepo` copies the repo's files (not .git, .venv, caches) to a temporary folder, links the parts that
must be shared (.venv, ./bin, the simulated cluster's .cache/sim, the CRD schemas), and plants one mistake:
`make lab` run there is exactly the student's command on a lab that contains the mistake.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.sim.helpers import ROOT, SIM_DIR

COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".cache",
    "bin",
    "artifacts",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def plant(text: str) -> str:
        assert old in text, f"the planted mistake no longer fits the file: {old!r} not found"
        return text.replace(old, new, 1)

    return plant


@dataclass(frozen=True)
class Mistake:
    name: str
    mesh: str
    lab: str
    file: str  # relative to the repo
    plant: Callable[[str], str]
    refusal: str  # what the API server answers (a substring)
    refused_by: str


# The canary's responses tagged with a header, but under the request filter's type (type and field disagree).
HEADER_FILTER = """      filters:
        - type: RequestHeaderModifier
          responseHeaderModifier:
            set:
              - name: x-canary
                value: "true"
"""

SELECTOR_PATCH = """
  # PLANTED: a recommended label added to product's selector (and its pods, so the Deployment stays valid)
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: product
        namespace: ecommerce
      spec:
        selector:
          matchLabels:
            app.kubernetes.io/name: product
        template:
          metadata:
            labels:
              app.kubernetes.io/name: product
"""

MISTAKES = [
    Mistake(
        name="httproute-filter-type-mismatch",
        mesh="linkerd",
        lab="canary",
        file="mesh/linkerd/labs/canary/http-route-product-90-10.yaml",
        plant=_replace(
            "          port: 3000\n    - matches:",
            "          port: 3000\n" + HEADER_FILTER + "    - matches:",
        ),
        refusal="filter.responseHeaderModifier must be nil if the filter.type is not ResponseHeaderModifier",
        refused_by="Gateway API CEL rule (x-kubernetes-validations of HTTPRoute filters)",
    ),
    Mistake(
        name="virtualservice-pertrytimeout-below-1ms",
        mesh="istio",
        lab="resilience",
        file="mesh/istio/labs/resilience/virtual-service-user-retries.yaml",
        plant=_replace("perTryTimeout: 2s", "perTryTimeout: 500us"),
        refusal="must be a valid duration greater than 1ms",
        refused_by="Istio CEL rule (x-kubernetes-validations of VirtualService retries.perTryTimeout)",
    ),
    Mistake(
        name="deployment-selector-changed-on-reapply",
        mesh="istio",
        lab="canary",
        file="mesh/istio/labs/canary/kustomization.yaml",
        plant=lambda text: text.rstrip("\n") + "\npatches:" + SELECTOR_PATCH,
        refusal="field is immutable",
        refused_by="the API server's Deployment validation (spec.selector is immutable)",
    ),
    Mistake(
        name="object-in-a-namespace-that-does-not-exist",
        mesh="istio",
        lab="egress",
        file="mesh/istio/labs/egress/destination-rule-payment-provider.yaml",
        plant=_replace("  namespace: ecommerce\n", "  namespace: ecomerce\n"),
        refusal='namespaces "ecomerce" not found',
        refused_by="the NamespaceLifecycle admission plugin",
    ),
]


class PlantedRepo:
    """A temporary copy of the repo with one mistake planted (see the module docstring)."""

    def __init__(self, base: Path, mistake: Mistake | None) -> None:
        self.root = base / "repo"
        shutil.copytree(ROOT, self.root, ignore=COPY_IGNORE, symlinks=True)
        (self.root / ".cache").mkdir()
        for shared in (".venv", "bin"):
            if (ROOT / shared).exists():
                (self.root / shared).symlink_to(ROOT / shared)
        if SIM_DIR.exists():
            (self.root / ".cache" / "sim").symlink_to(SIM_DIR)
        for crds in (ROOT.parent / "shared" / "crds", ROOT / ".cache" / "crds"):
            if crds.is_dir():
                (self.root / ".cache" / "crds").symlink_to(crds)
                break
        if mistake is not None:
            path = self.root / mistake.file
            path.write_text(mistake.plant(path.read_text()))
