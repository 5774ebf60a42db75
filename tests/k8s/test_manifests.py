"""The rendered manifests keep the contract of docs/architecture.md and issue 4 (what schemas cannot see).

Each test reads what `kubectl kustomize` renders, so a renamed label, a lost probe or a variant that drifts
from its stable Deployment fails here before a student's `make up` does.
"""

from __future__ import annotations

import copy
import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.k8svalidate import REPO_ROOT, render
from services import topology
from services.kit.settings import neighbour_settings

Doc = dict[str, Any]
SERVICES = list(topology.SERVICES)
DB_SERVICES = list(topology.WITH_DATABASE)
VARIANTS = {  # Deployment -> (stable Deployment, version label, env that differs)
    # the canary build v2: VERSION comes from the label, so it answers x-served-by: product/v2
    "product-canary": ("product", "v2", {}),
    "frontend-mobile-optimized": ("frontend", "mobile-optimized", {"VARIANT": "mobile-optimized"}),
    "frontend-beta-features": ("frontend", "beta-features", {"VARIANT": "beta-features"}),
}
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (`kubectl kustomize`)")


def get(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def pod(doc: Doc) -> Doc:
    return dict(doc["spec"]["template"]["spec"])


def container(doc: Doc) -> Doc:
    (c,) = pod(doc)["containers"]
    return dict(c)


def env(c: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_account_deployment_and_named_ports(dev_docs: list[Doc], service: str) -> None:
    account = get(dev_docs, "ServiceAccount", f"{service}-sa")
    deployment = get(dev_docs, "Deployment", service)
    labels = {"app": service, "version": "v1"}
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    # x-served-by reports <service>/<the version label>: one name per version
    assert env(container(deployment))["VERSION"] == {"fieldRef": {"fieldPath": "metadata.labels['version']"}}
    assert labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert pod(deployment)["serviceAccountName"] == account["metadata"]["name"]
    assert container(deployment)["image"] == f"shop/{service}:dev"

    svc = get(dev_docs, "Service", service)
    assert svc["spec"]["selector"] == {"app": service}  # all variants: basic load balancing
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    expected = {"http": (80 if service == "frontend" else 3000, "http")}
    if service == "product":
        expected["grpc"] = (9000, "grpc")
    assert ports == expected
    container_ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    assert container_ports["http"] == int(env(container(deployment))["PORT"])


@pytest.mark.parametrize("service", SERVICES)
def test_probes_liveness_readiness_and_grpc_on_inventory(dev_docs: list[Doc], service: str) -> None:
    c = container(get(dev_docs, "Deployment", service))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    if service == "product":
        assert c["startupProbe"]["grpc"]["port"] == 9000


def test_every_workload_is_locked_down(dev_docs: list[Doc]) -> None:
    for w in workloads(dev_docs):
        name = w["metadata"]["name"]
        spec = pod(w)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def test_the_shop_fits_a_laptop_next_to_istio(dev_docs: list[Doc]) -> None:
    """Requests and limits everywhere; all limits together leave most of 8 GB to Istio and the node."""
    limits = requests = 0.0
    for w in workloads(dev_docs):
        for c in pod(w)["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= res["requests"].keys() and {"cpu", "memory"} <= res["limits"].keys()
            requests += _mebibytes(res["requests"]["memory"]) * w["spec"]["replicas"]
            limits += _mebibytes(res["limits"]["memory"]) * w["spec"]["replicas"]
    assert requests <= 1.5 * 1024, f"{requests:.0f} Mi of memory requests"
    assert limits <= 4 * 1024, f"{limits:.0f} Mi of memory limits"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_are_the_stable_deployment_with_other_labels_and_env(
    dev_docs: list[Doc], variant: str
) -> None:
    """The variants are full copies (kustomize cannot clone a Deployment): they must not drift."""
    stable_name, version, changed_env = VARIANTS[variant]
    stable, other = get(dev_docs, "Deployment", stable_name), get(dev_docs, "Deployment", variant)
    labels = {"app": stable_name, "version": version}
    assert other["metadata"]["labels"] == labels
    assert other["spec"]["selector"]["matchLabels"] == labels
    assert other["spec"]["template"]["metadata"]["labels"] == labels
    assert {k: env(container(other))[k] for k in changed_env} == changed_env

    expected = copy.deepcopy(stable)
    expected["metadata"]["name"] = variant
    for meta in (expected["metadata"], expected["spec"]["template"]["metadata"]):
        meta["labels"] = labels
    expected["spec"]["selector"]["matchLabels"] = labels
    for e in expected["spec"]["template"]["spec"]["containers"][0]["env"]:
        e["value"] = changed_env.get(e["name"], e.get("value"))
        if e["value"] is None:
            del e["value"]
    assert other == expected


def test_every_frontend_signs_csrf_tokens_with_the_same_secret(dev_docs: list[Doc]) -> None:
    """A form rendered by one frontend variant is posted to whichever pod the mesh picks."""
    frontends = [d for d in workloads(dev_docs) if d["metadata"]["name"].startswith("frontend")]
    assert len(frontends) == 3
    shared = {"secretKeyRef": {"name": "frontend-session", "key": "secret"}}
    for d in frontends:
        assert env(container(d))["SESSION_SECRET"] == shared, d["metadata"]["name"]


def test_service_urls_follow_the_call_graph(dev_docs: list[Doc]) -> None:
    """Each Deployment is told where exactly the neighbours its settings name are (the settings mirror the
    call graph of docs/architecture.md: tests/services/test_neighbours.py), each at a real Service port."""
    services = {d["metadata"]["name"]: d for d in dev_docs if d["kind"] == "Service"}
    for d in (d for d in dev_docs if d["kind"] == "Deployment"):
        app = d["spec"]["template"]["metadata"]["labels"]["app"]
        variables = env(container(d))
        settings = importlib.import_module(f"services.{app}.settings").Settings
        expected = {name.upper() for name in neighbour_settings(settings) if name != "mongo_url"}
        urls = {k for k in variables if k.endswith(("_URL", "_GRPC_TARGET")) and k != "MONGO_URL"}
        assert urls - {"PROVIDER_URL"} == expected, d["metadata"]["name"]
        if "AUTH_JWKS_URL" in expected:
            assert variables["AUTH_JWKS_URL"] == "http://auth:3000/.well-known/jwks.json"
        for k in urls - {"PROVIDER_URL"}:
            host, port = re.fullmatch(r"(?:http://)?([a-z]+):(\d+)(?:/.*)?", variables[k]).groups()  # type: ignore[union-attr]
            assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, f"{k}={variables[k]}"


def test_database_users_match_the_generated_secrets(dev_docs: list[Doc]) -> None:
    """One database and one user per service: init script, secrets.sh and the Deployments agree."""
    # The init script makes a user per key of Secret mongodb-users (tests/test_topology.py runs it), and
    # secrets.sh makes a key per service with a database, from the topology (test_scripts_dry_run.py).
    init = (REPO_ROOT / "k8s" / "base" / "mongodb-init.js").read_text()
    assert "listNames(usersDir)" in init and "const services = [" not in init
    assert "roles: [{role: 'readWrite', db: svc}]" in init  # least privilege: its own database only
    secrets_sh = (REPO_ROOT / "scripts" / "secrets.sh").read_text()
    assert 'DB_SERVICES="$(database_services)"' in secrets_sh
    for service in SERVICES:
        mongo = env(container(get(dev_docs, "Deployment", service))).get("MONGO_URL")
        own = {"secretKeyRef": {"name": f"mongo-{service}", "key": "url"}}
        assert mongo == (None if service == "frontend" else own), service


def test_mongodb_statefulset(dev_docs: list[Doc]) -> None:
    sts = get(dev_docs, "StatefulSet", "mongodb")
    c = container(sts)
    assert re.fullmatch(r"mongo:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", c["image"])
    assert pod(sts)["serviceAccountName"] == "mongodb-sa"
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    assert {"name": "data", "mountPath": "/data/db"} in c["volumeMounts"]
    variables = env(c)
    for var, key in (("MONGO_INITDB_ROOT_USERNAME", "username"), ("MONGO_INITDB_ROOT_PASSWORD", "password")):
        assert variables[var] == {"secretKeyRef": {"name": "mongodb-root", "key": key}}  # auth on
    svc = get(dev_docs, "Service", "mongodb")
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["labels"]["app"] == "mongodb"
    assert svc["spec"]["ports"] == [{"name": "tcp-mongo", "port": 27017, "targetPort": "mongo"}]
    assert sts["spec"]["serviceName"] == "mongodb"


def test_mongodb_startup_probe_asks_the_real_server_with_either_shell(dev_docs: list[Doc]) -> None:
    """Not 127.0.0.1 (the entrypoint's temporary init server listens there) and both mongosh and mongo.

    The real ping runs once, as the startup probe; readiness and liveness are a TCP connect to the same
    address (test_validator: test_mongodb_pings_once_at_startup_and_probes_cheaply_after)."""
    c = container(get(dev_docs, "StatefulSet", "mongodb"))
    script = c["startupProbe"]["exec"]["command"][-1]
    shells = [part.split()[0] for part in script.split("||")]
    assert shells == ["mongosh", "mongo"]
    assert script.count('--host "$POD_IP"') == 2 and "ping" in script
    assert env(c)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_no_secret_is_committed(dev_docs: list[Doc]) -> None:
    assert not [d for d in dev_docs if d["kind"] == "Secret"]
    for path in (REPO_ROOT / "k8s").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "PRIVATE" + " KEY-----" not in text and "kind: Secret" not in text, path


def test_avx_fallback_stanza_renders_mongo_44_in_every_overlay(tmp_path: Path) -> None:
    """docs/kubernetes.md: uncommenting the `images:` stanza of k8s/base is the one setting for old CPUs."""
    base = REPO_ROOT / "k8s" / "base" / "kustomization.yaml"
    lines = base.read_text().splitlines()
    start = lines.index("# images:")
    stanza = yaml.safe_load("\n".join(line[2:] for line in lines[start : start + 3]))
    assert stanza == {"images": [{"name": "mongo", "newTag": "4.4.29"}]}
    work = REPO_ROOT / ".cache" / "render" / f"avx-{tmp_path.name}"
    shutil.copytree(REPO_ROOT / "k8s", work / "k8s")
    shutil.copytree(REPO_ROOT / "mesh", work / "mesh")
    try:
        kust = yaml.safe_load((work / "k8s" / "base" / "kustomization.yaml").read_text())
        kust.update(stanza)
        (work / "k8s" / "base" / "kustomization.yaml").write_text(yaml.safe_dump(kust))
        for overlay in ("k8s/overlays/dev", "mesh/istio/overlay", "mesh/linkerd/overlay"):
            if not (work / overlay).is_dir():
                continue
            sts = get(render(work / overlay), "StatefulSet", "mongodb")
            assert container(sts)["image"] == "mongo:4.4.29", overlay
    finally:
        shutil.rmtree(work)
