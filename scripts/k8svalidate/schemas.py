"""Strict schema validation: core kinds via kubernetes-validate's schemas, CRD kinds via the real CRDs."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from packaging.version import Version
from referencing import Registry, Resource

from scripts.k8svalidate.render import REPO_ROOT, versions

# The object metadata every CRD kind shares (the API server validates it, not the CRD schema).
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}


def crd_dir() -> Path:
    """CRD schemas: ../shared/crds (CI) if present, else .cache/crds (downloaded by `make crds`)."""
    for candidate in (REPO_ROOT.parent / "shared" / "crds", REPO_ROOT / ".cache" / "crds"):
        if candidate.is_dir() and any(candidate.rglob("*.yaml")):
            return candidate
    raise FileNotFoundError(
        "no CRD schemas found in ../shared/crds or .cache/crds: run `make crds` to download them"
    )


def _schema_root() -> Path:
    return Path(str(resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")))


@cache
def k8s_version() -> str:
    """kubernetes-validate schema version: the kind node's minor, or the newest shipped if that is lower."""
    image = versions()["KIND_NODE_IMAGE"]
    match = re.search(r":v(\d+\.\d+)", image)
    if not match:
        raise ValueError(f"cannot read a Kubernetes version from KIND_NODE_IMAGE={image}")
    wanted = Version(match.group(1))
    shipped = sorted(
        {Version(re.sub(r"^v([\d.]+)-.*", r"\1", p.name)) for p in _schema_root().glob("v*-local-strict")}
    )
    usable = [v for v in shipped if (v.major, v.minor) <= (wanted.major, wanted.minor)]
    chosen = usable[-1] if usable else shipped[-1]
    return f"{chosen.major}.{chosen.minor}.{chosen.micro}"


@cache
def _core_registry(version: str) -> tuple[Path, Registry]:
    folder = _schema_root() / f"v{version}-local-strict"
    defs = json.loads((folder / "_definitions.json").read_text())
    return folder, Resource.from_contents(defs) @ Registry()


@cache
def _core_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    folder, registry = _core_registry(k8s_version())
    # apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1 (kubernetes-validate's naming)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    f = folder / f"{kind.lower()}-{api}.json"
    if not f.is_file():
        return None
    schema = json.loads(f.read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Copy of an OpenAPI schema where unknown fields fail (as `kubectl apply` strict validation does)."""
    s = dict(schema)
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if isinstance(s.get("properties"), dict):
        s["properties"] = {k: _strict(v) for k, v in s["properties"].items()}
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = _strict(s["additionalProperties"])
    if isinstance(s.get("items"), dict):
        s["items"] = _strict(s["items"])
    is_object = s.get("type") == "object" or "properties" in s
    if is_object and not preserve and "additionalProperties" not in s:
        s["additionalProperties"] = False
    return s


@cache
def _crd_index(folder: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> strict schema, for every served version of every CRD in folder."""
    index: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in sorted(Path(folder).rglob("*.y*ml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for ver in spec.get("versions", []):
                raw = (ver.get("schema") or {}).get("openAPIV3Schema")
                if not ver.get("served", True) or raw is None:
                    continue
                schema = _strict(copy.deepcopy(raw))
                schema.setdefault("properties", {})["metadata"] = _METADATA
                schema["properties"].setdefault("apiVersion", {"type": "string"})
                schema["properties"].setdefault("kind", {"type": "string"})
                index[(spec["group"], ver["name"], spec["names"]["kind"])] = schema
    return index


@cache
def _crd_validator(group: str, version: str, kind: str) -> jsonschema.protocols.Validator | None:
    schema = _crd_index(str(crd_dir())).get((group, version, kind))
    return None if schema is None else jsonschema.Draft4Validator(schema)


def describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind', '?')} {ns}{meta.get('name', '?')}"


def _path(err: jsonschema.ValidationError) -> str:
    return "." + ".".join(str(p) for p in err.absolute_path) if err.absolute_path else "(root)"


def validate_docs(docs: list[dict[str, Any]]) -> list[str]:
    """Strict schema errors for rendered documents; [] means valid. A kind with no schema is an error."""
    errors: list[str] = []
    for doc in docs:
        api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        if not api_version or not kind:
            errors.append(f"{describe(doc)}: missing apiVersion or kind")
            continue
        group, _, version = api_version.rpartition("/")
        validator = _crd_validator(group, version, kind) if group else None
        if validator is None:
            validator = _core_validator(api_version, kind)
        if validator is None:
            errors.append(
                f"{describe(doc)}: no schema for {api_version} {kind} (not a Kubernetes {k8s_version()} "
                f"kind nor a CRD in {crd_dir()})"
            )
            continue
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
            msg = err.message if len(err.message) < 300 else err.message[:300] + "..."
            errors.append(f"{describe(doc)}: {_path(err)}: {msg}")
    return errors
