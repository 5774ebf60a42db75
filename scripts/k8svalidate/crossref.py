"""Cross-reference checks between rendered documents (what schemas cannot see).

Secrets and ConfigMaps referenced by pods are NOT required to be in the documents: the Secrets are
created at deploy time by scripts/secrets.sh and never committed.
"""

from __future__ import annotations

import re

from scripts.k8svalidate.resources import Doc, pod_templates
from scripts.k8svalidate.schemas import describe
from services import topology

# Paths the shop's own images serve (docs/architecture.md).
SHOP_PROBE_PATHS = {"/healthz", "/readyz", "/metrics"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _ns(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("namespace") or "default")


def _containers(pod: Doc) -> list[Doc]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _port_exists(port: int | str, containers: list[Doc]) -> bool:
    for c in containers:
        for p in c.get("ports") or []:
            if port == p.get("name") or port == p.get("containerPort"):
                return True
    return False


def image_error(image: str) -> str | None:
    """None when the image is one `make images` builds or is pinned (tag other than latest, or digest)."""
    built = {f"shop/{s}" for s in topology.SERVICES}
    if _DIGEST.search(image):
        return None
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if name.startswith("shop/") and name not in built:
        return f"image {image} is not built by `make images` (services: {' '.join(topology.SERVICES)})"
    if not tag or tag == "latest":
        return f"image {image} is not pinned (needs a tag other than latest, or a digest)"
    return None


def pull_policy_error(container: Doc) -> str | None:
    """The shop's images must never be pulled: `shop/<service>` would mean docker.io/shop/<service>.

    `make up` builds them and loads them into the kind node. With IfNotPresent (the default for a tag other
    than latest) a node that lacks one pulls someone else's public image, or fails with a confusing pull
    error; with Never it reports ErrImageNeverPull, which says what happened.
    """
    image = str(container.get("image", ""))
    if image.startswith("shop/") and container.get("imagePullPolicy") != "Never":
        policy = container.get("imagePullPolicy", "unset (IfNotPresent)")
        return (
            f"image {image} is built and side-loaded by make up: imagePullPolicy must be Never, not {policy}"
        )
    return None


# Programs that start a language runtime or a full client: seconds of CPU and tens of MB per run. Fine in a
# startupProbe (runs until the first success), not in a probe that runs every period for the pod's life.
HEAVY_PROBE_PROGRAMS = ("mongosh", "mongo", "node", "python", "python3", "java", "psql", "mysql", "redis-cli")


def exec_probe_errors(where: str, kind: str, probe: Doc) -> list[str]:
    """Exec probes are cheap and tolerant: no client runtime in readiness/liveness, a timeout set.

    MongoDB's readiness used to run mongosh (Node.js) every 10 s inside MongoDB's own limits; on a busy
    laptop it timed out and the pod, and with it the `mongodb` DNS name, went away.
    """
    command = " ".join(str(a) for a in (probe.get("exec") or {}).get("command") or [])
    if not command:
        return []
    errors = []
    words = set(re.findall(r"[A-Za-z0-9_.-]+", command))
    heavy = sorted(words & set(HEAVY_PROBE_PROGRAMS))
    if heavy and kind != "startupProbe":
        errors.append(
            f"{where}: {kind} runs {', '.join(heavy)} every period: do that in a startupProbe instead"
        )
    if probe.get("timeoutSeconds", 1) < 2:
        errors.append(
            f"{where}: {kind} exec probe with timeoutSeconds {probe.get('timeoutSeconds', 1)} (default 1)"
        )
    return errors


VERSION_FROM_LABEL = {"fieldRef": {"fieldPath": "metadata.labels['version']"}}


def version_name_error(pod: Doc, container: Doc) -> str | None:
    """A shop container reports the name of its version that the mesh uses: VERSION = the `version` label.

    x-served-by says `<service>/<VERSION>`; DestinationRule subsets, Linkerd's per-version Services, Kiali
    and linkerd viz say the pod's `version` label. The canary used to be labelled `canary` and report
    `product/v2`: two names for one version.
    """
    if not str(container.get("image", "")).startswith("shop/") or "command" in container:
        return None  # not a shop service (the egress lab's provider only borrows payment's Python)
    label = ((pod.get("metadata") or {}).get("labels") or {}).get("version")
    env = {e.get("name"): e for e in container.get("env") or []}
    version = env.get("VERSION")
    if label is None:
        return "pod template has no `version` label (x-served-by reports it)"
    if version is None or (version.get("valueFrom") != VERSION_FROM_LABEL and version.get("value") != label):
        shown = "unset" if version is None else version.get("value", version.get("valueFrom"))
        return (
            f"VERSION is {shown}, but the pod is labelled version: {label}: take it from the label "
            "(valueFrom.fieldRef metadata.labels['version'])"
        )
    return None


def _probe_errors(where: str, c: Doc) -> list[str]:
    errors = []
    shop_image = str(c.get("image", "")).startswith("shop/")
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(kind)
        if not probe:
            continue
        errors.extend(exec_probe_errors(where, kind, probe))
        for handler in ("httpGet", "tcpSocket", "grpc"):
            h = probe.get(handler)
            if h is None:
                continue
            port, path = h.get("port"), h.get("path")
            if not _port_exists(port, [c]):
                errors.append(f"{where}: {kind}.{handler}.port {port} is not a port of the container")
            if handler == "httpGet" and shop_image and path not in SHOP_PROBE_PATHS:
                errors.append(f"{where}: {kind}.httpGet.path {path} is not one of {sorted(SHOP_PROBE_PATHS)}")
    return errors


def crossref_errors(docs: list[Doc]) -> list[str]:
    errors: list[str] = []
    accounts = {(_ns(d), d["metadata"]["name"]) for d in docs if d.get("kind") == "ServiceAccount"}
    workloads = [(d, t) for d in docs for t in pod_templates(d)]

    for doc, pod in workloads:
        ns = _ns(doc)
        sa = (pod.get("spec") or {}).get("serviceAccountName")
        if sa and sa != "default" and (ns, sa) not in accounts:
            errors.append(f"{describe(doc)}: ServiceAccount {ns}/{sa} does not exist")
        for c in _containers(pod):
            where = f"{describe(doc)} container {c.get('name')}"
            for problem in (
                image_error(str(c.get("image", ""))),
                pull_policy_error(c),
                version_name_error(pod, c),
            ):
                if problem:
                    errors.append(f"{where}: {problem}")
            errors.extend(_probe_errors(where, c))

    errors.extend(governing_service_errors(docs))
    for svc in (d for d in docs if d.get("kind") == "Service"):
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            continue
        matched = [
            pod
            for doc, pod in workloads
            if _ns(doc) == _ns(svc)
            and selector.items() <= ((pod.get("metadata") or {}).get("labels") or {}).items()
        ]
        if not matched:
            errors.append(f"{describe(svc)}: selector {selector} matches no pod template")
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for pod in matched:
                if not _port_exists(target, _containers(pod)):
                    labels = (pod.get("metadata") or {}).get("labels")
                    errors.append(
                        f"{describe(svc)}: targetPort {target} is not a container port of pods {labels}"
                    )
    return errors


def governing_service_errors(docs: list[Doc]) -> list[str]:
    """A StatefulSet's headless governing Service publishes not-ready addresses.

    Its DNS names (mongodb, mongodb-0.mongodb) are how clients find the pod; without
    publishNotReadyAddresses they vanish whenever a probe fails once too often, and clients get DNS errors
    instead of a connection they can retry.
    """
    services = {(_ns(d), d["metadata"]["name"]): d for d in docs if d.get("kind") == "Service"}
    errors = []
    for sts in (d for d in docs if d.get("kind") == "StatefulSet"):
        svc = services.get((_ns(sts), (sts.get("spec") or {}).get("serviceName")))
        if svc is None:
            continue
        spec = svc.get("spec") or {}
        if spec.get("clusterIP") == "None" and not spec.get("publishNotReadyAddresses"):
            errors.append(
                f"{describe(svc)}: headless Service of StatefulSet {sts['metadata']['name']} needs "
                "publishNotReadyAddresses: true (its DNS names must not vanish while the pod is unready)"
            )
    return errors
