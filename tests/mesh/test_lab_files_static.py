"""Lab files are named like Bookinfo's and the Istio labs': `<kind>-<subject>-<scenario>.yaml`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT

LAB_FILES = sorted(
    p for p in (REPO_ROOT / "mesh").glob("*/labs/**/*.yaml") if p.name not in ("kustomization.yaml",)
)
# Shorter names the Istio docs themselves use for a kind.
ALIASES = {"AuthorizationPolicy": "authorization"}


def kebab(kind: str) -> str:
    """VirtualService -> virtual-service, HTTPRoute -> http-route, GRPCRoute -> grpc-route."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", kind).lower()


def name_error(path: Path) -> str | None:
    """None when the file name starts with the kind of one of its documents (`<kind>-...`)."""
    kinds = {d["kind"] for d in yaml.safe_load_all(path.read_text()) if d and "kind" in d}
    prefixes = {kebab(k) for k in kinds} | {ALIASES[k] for k in kinds if k in ALIASES}
    stem = path.name.removesuffix(".yaml")
    if any(stem == p or stem.startswith(f"{p}-") for p in prefixes):
        return None
    return f"{path.name}: name it <kind>-<subject>-<scenario>.yaml, kind one of {sorted(prefixes)}"


def test_kebab_case_of_the_meshes_kinds() -> None:
    assert kebab("VirtualService") == "virtual-service"
    assert kebab("HTTPRoute") == "http-route"
    assert kebab("GRPCRoute") == "grpc-route"
    assert kebab("MeshTLSAuthentication") == "mesh-tls-authentication"
    assert kebab("ServiceProfile") == "service-profile"


@pytest.mark.parametrize("path", LAB_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT / "mesh")))
def test_every_lab_file_is_named_by_kind_subject_scenario(path: Path) -> None:
    assert name_error(path) is None, name_error(path)


def test_the_old_linkerd_names_are_caught(tmp_path: Path) -> None:
    old = tmp_path / "product-canary-route.yaml"
    old.write_text(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: product-canary}\n"
    )
    assert "kind one of ['http-route']" in str(name_error(old))
    new = tmp_path / "http-route-product-90-10.yaml"
    new.write_text(old.read_text())
    assert name_error(new) is None
