"""What the kubelet would do with a Deployment's pod, as `docker run` options (`make image-test`).

`plan(cluster, deployment, ...)` reads the pod template of a rendered Deployment (k8s/base through kustomize,
the one source) and returns how to run its container with docker the way the kubelet runs it:

- user, group and fsGroup (`--user`, `--group-add`), `runAsNonRoot` checked before start as the kubelet does;
- `readOnlyRootFilesystem` (`--read-only`), capabilities (`--cap-drop`/`--cap-add`),
  `allowPrivilegeEscalation: false` (`--security-opt no-new-privileges`), seccomp `RuntimeDefault` (docker's
  default profile);
- `limits.memory` (`--memory`, swap off as the kubelet runs it), `limits.cpu` (`--cpus`: the same CFS quota),
  `requests.cpu` (`--cpu-shares`: the kubelet's milliCPU x 1024 / 1000);
- environment: literal values, Secret and ConfigMap keys, the Downward API (pod name, namespace, labels,
  annotations) and the service links the kubelet injects for every Service of the namespace
  (`AUTH_SERVICE_HOST`, `AUTH_PORT`, ...);
- volumes: `emptyDir` as a tmpfs of its `sizeLimit`, `secret` as a read-only bind mount of files written with
  the Secret's mode and owned by group fsGroup (as the kubelet writes them);
- the probes, as URLs the test polls.

The one deliberate difference: there is no pod network here, so every container shares the host's
(`--network host`) and listens on 127.0.0.1 at a free port instead of <pod IP>:<containerPort>. Environment
values that set the listen address or port, and every `<service>:<port>` address of the cluster in a value,
are rewritten to that; each rewrite is listed in `RunPlan.overrides` for the test to print.

Raises `Unsupported` for any pod setting it cannot reproduce faithfully, and `MissingSecret` where the kubelet
would refuse to create the container (CreateContainerConfigError).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity as _parse_quantity

Doc = dict[str, Any]
LOOPBACK = "127.0.0.1"


def parse_quantity(quantity: str | int | float) -> float:
    """A Kubernetes quantity ("256Mi", "500m", "1") as a number (bytes, cores), by the kubernetes client."""
    return float(_parse_quantity(quantity))  # type: ignore[no-untyped-call]


class Unsupported(ValueError):
    """A pod setting this translation cannot reproduce with docker faithfully."""


class MissingSecret(KeyError):
    """A Secret (or key) the pod needs is not provided: the kubelet would not start the container."""


@dataclass(frozen=True)
class Probe:
    kind: str  # liveness, readiness, startup
    handler: str  # httpGet, grpc, tcpSocket
    url: str  # http://127.0.0.1:<port><path>, or 127.0.0.1:<port> for gRPC and TCP
    grpc_service: str = ""


@dataclass
class RunPlan:
    """One container of one Deployment, ready for `docker run <options> <image> <args>`."""

    deployment: str
    container: str
    image: str  # as the manifest names it (the test runs the image it built instead)
    options: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    listeners: dict[int, int] = field(default_factory=dict)  # containerPort -> port on 127.0.0.1
    probes: list[Probe] = field(default_factory=list)
    memory_limit_bytes: int | None = None
    cpu_limit: float | None = None

    def url(self, container_port: int, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.listeners[container_port]}{path}"


class Cluster:
    """The rendered documents of one namespace: Deployments, Services, ConfigMaps, and who selects whom."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self.deployments = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Deployment"}
        self.services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
        self.config_maps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
        namespaces = {
            d["metadata"].get("namespace") for d in docs if d.get("kind") in ("Deployment", "Service")
        }
        if len(namespaces) != 1:
            raise Unsupported(f"one namespace expected, got {sorted(map(str, namespaces))}")
        self.namespace = str(namespaces.pop())

    def container(self, deployment: str) -> Doc:
        containers = self.pod_spec(deployment)["containers"]
        if len(containers) != 1:
            raise Unsupported(f"{deployment}: one container per pod expected, got {len(containers)}")
        container: Doc = containers[0]
        return container

    def pod_spec(self, deployment: str) -> Doc:
        spec: Doc = self.deployments[deployment]["spec"]["template"]["spec"]
        return spec

    def selected_deployments(self, service: str) -> list[str]:
        selector = self.services[service]["spec"].get("selector") or {}
        return [
            name
            for name, d in self.deployments.items()
            if selector and selector.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()
        ]

    def target_port(self, service: str, port: int) -> tuple[str, int]:
        """(Deployment, containerPort) that `<service>:<port>` reaches; Unsupported when nothing does."""
        ports = self.services[service]["spec"].get("ports", [])
        match = next((p for p in ports if p["port"] == port), None)
        if match is None:
            raise Unsupported(f"Service {service} has no port {port} (ports: {[p['port'] for p in ports]})")
        target = match.get("targetPort", port)
        deployments = self.selected_deployments(service)
        if not deployments:
            raise Unsupported(f"Service {service} selects no Deployment")
        deployment = sorted(deployments, key=lambda d: d != service)[0]  # the base workload, not a variant
        for p in self.container(deployment).get("ports", []):
            if target in (p.get("name"), p["containerPort"]):
                return deployment, int(p["containerPort"])
        raise Unsupported(
            f"Service {service} port {port} targets {target!r}, which {deployment} does not expose"
        )


def allocate_ports(cluster: Cluster, free_port: Callable[[], int]) -> dict[str, dict[int, int]]:
    """A free 127.0.0.1 port per containerPort per Deployment: {deployment: {containerPort: port}}."""
    return {
        name: {int(p["containerPort"]): free_port() for p in cluster.container(name).get("ports", [])}
        for name in cluster.deployments
    }


def _service_address_pattern(cluster: Cluster) -> re.Pattern[str]:
    names = "|".join(re.escape(s) for s in sorted(cluster.services, key=len, reverse=True))
    ns = re.escape(cluster.namespace)
    return re.compile(rf"(?<![\w.-])({names})(?:\.{ns}(?:\.svc(?:\.cluster\.local)?)?)?:(\d+)\b")


def localize(value: str, cluster: Cluster, ports: Mapping[str, Mapping[int, int]]) -> str:
    """`value` with every `<service>[.<namespace>[.svc[.cluster.local]]]:<port>` of the cluster pointed at
    127.0.0.1 and the port where that Service's target container listens here."""

    def to_loopback(match: re.Match[str]) -> str:
        deployment, container_port = cluster.target_port(match.group(1), int(match.group(2)))
        return f"{LOOPBACK}:{ports[deployment][container_port]}"

    return _service_address_pattern(cluster).sub(to_loopback, value)


def _service_links(cluster: Cluster, ports: Mapping[str, Mapping[int, int]]) -> dict[str, str]:
    """The Docker-links style variables the kubelet sets for every Service with a cluster IP."""
    env: dict[str, str] = {}
    for name, service in sorted(cluster.services.items()):
        spec = service["spec"]
        if spec.get("clusterIP") == "None" or not spec.get("ports"):
            continue  # headless Services get no variables
        prefix = name.upper().replace("-", "_")
        for index, p in enumerate(spec["ports"]):
            deployment, container_port = cluster.target_port(name, p["port"])
            port = ports[deployment][container_port]
            proto = p.get("protocol", "TCP")
            if index == 0:
                env[f"{prefix}_SERVICE_HOST"] = LOOPBACK
                env[f"{prefix}_SERVICE_PORT"] = str(port)
                env[f"{prefix}_PORT"] = f"{proto.lower()}://{LOOPBACK}:{port}"
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(port)
            key = f"{prefix}_PORT_{port}_{proto}"
            env.update({key: f"{proto.lower()}://{LOOPBACK}:{port}", f"{key}_PROTO": proto.lower()})
            env.update({f"{key}_PORT": str(port), f"{key}_ADDR": LOOPBACK})
    return env


def _env_value(
    item: Doc, cluster: Cluster, secrets: Mapping[str, Mapping[str, str]], pod_name: str, pod_meta: Doc
) -> str | None:
    if "value" in item:
        return str(item["value"])
    source = item.get("valueFrom", {})
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is None and not ref.get("optional"):
            raise MissingSecret(f"env {item['name']}: Secret {ref['name']} key {ref['key']} is not provided")
        return value
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        data = cluster.config_maps.get(ref["name"], {}).get("data", {})
        if ref["key"] not in data and not ref.get("optional"):
            raise MissingSecret(
                f"env {item['name']}: ConfigMap {ref['name']} key {ref['key']} does not exist"
            )
        found = data.get(ref["key"])
        return None if found is None else str(found)
    if "fieldRef" in source:
        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": cluster.namespace,
            "status.podIP": LOOPBACK,
        }
        for kind in ("labels", "annotations"):  # the Downward API: the pod's own labels and annotations
            fields.update({f"metadata.{kind}['{k}']": str(v) for k, v in pod_meta.get(kind, {}).items()})
        path = source["fieldRef"]["fieldPath"]
        if path not in fields:
            raise Unsupported(f"env {item['name']}: fieldRef {path}")
        return fields[path]
    raise Unsupported(f"env {item['name']}: {sorted(source)}")


def _user(pod: Doc, container: Doc) -> tuple[int, int | None]:
    merged = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    if "runAsUser" not in merged:
        raise Unsupported(
            "no runAsUser: the image's USER would decide, which the manifests should not leave open"
        )
    uid, gid = int(merged["runAsUser"]), merged.get("runAsGroup")
    if merged.get("runAsNonRoot") and uid == 0:
        raise Unsupported("runAsNonRoot with runAsUser 0: the kubelet refuses to start this container")
    return uid, (int(gid) if gid is not None else None)


def _security_options(pod: Doc, container: Doc) -> list[str]:
    ctx = container.get("securityContext", {})
    pod_ctx = pod.get("securityContext", {})
    uid, gid = _user(pod, container)
    options = ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    groups = [pod_ctx["fsGroup"]] if "fsGroup" in pod_ctx else []
    for group in [*groups, *pod_ctx.get("supplementalGroups", [])]:
        options += ["--group-add", str(group)]
    if ctx.get("privileged"):
        raise Unsupported("privileged containers")
    if ctx.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    caps = ctx.get("capabilities", {})
    for cap in caps.get("drop", []):
        options += ["--cap-drop", cap]
    for cap in caps.get("add", []):
        options += ["--cap-add", cap]
    if ctx.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    seccomp = {**pod_ctx.get("seccompProfile", {}), **ctx.get("seccompProfile", {})}.get("type", "Unconfined")
    if seccomp == "Unconfined":
        options += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":  # RuntimeDefault = the container runtime's default profile (docker's)
        raise Unsupported(f"seccompProfile {seccomp}")
    return options


def _resource_options(container: Doc, run: RunPlan) -> list[str]:
    resources = container.get("resources", {})
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    options = []
    if "memory" in limits:
        run.memory_limit_bytes = int(parse_quantity(limits["memory"]))
        # The kubelet runs pods without swap: the limit is the limit.
        options += ["--memory", str(run.memory_limit_bytes), "--memory-swap", str(run.memory_limit_bytes)]
    if "cpu" in limits:
        run.cpu_limit = float(parse_quantity(limits["cpu"]))
        options += ["--cpus", f"{run.cpu_limit:g}"]
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:
        options += ["--cpu-shares", str(max(2, int(parse_quantity(cpu_request) * 1024)))]
    return options


def _write_secret_volume(
    target: Path, secret: Mapping[str, str], mode: int, fs_group: int | None, items: list[Doc] | None
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    files = {str(i["key"]): str(i.get("path", i["key"])) for i in items} if items else {k: k for k in secret}
    for key, path in files.items():
        if key not in secret:
            raise MissingSecret(f"Secret key {key} is not provided")
        file = target / path
        file.write_text(secret[key])
        if fs_group is not None and os.geteuid() == 0:
            os.chown(file, 0, fs_group)  # the kubelet: owner root, group fsGroup
        elif fs_group is not None:
            mode |= 0o444  # not root (a docker-group user): readable by all, or the pod could not read it
        file.chmod(mode)


def _volume_options(
    pod: Doc, container: Doc, run: RunPlan, secrets: Mapping[str, Mapping[str, str]], volume_dir: Path
) -> list[str]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    fs_group = pod.get("securityContext", {}).get("fsGroup")
    options = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            tmpfs = f"{path}:rw,nosuid,nodev,mode=1777" + (
                f",size={int(parse_quantity(size))}" if size else ""
            )
            options += ["--tmpfs", tmpfs]
        elif "secret" in volume:
            spec = volume["secret"]
            secret = secrets.get(spec["secretName"])
            if secret is None:
                raise MissingSecret(f"volume {mount['name']}: Secret {spec['secretName']} is not provided")
            source = volume_dir / run.deployment / mount["name"]
            _write_secret_volume(
                source, secret, int(spec.get("defaultMode", 0o644)), fs_group, spec.get("items")
            )
            source.chmod(0o755)
            options += ["--mount", f"type=bind,source={source},target={path},readonly"]
            if not mount.get("readOnly", True):
                raise Unsupported(f"volume {mount['name']}: a Secret volume is always read-only")
        else:
            raise Unsupported(f"volume {mount['name']}: {sorted(k for k in volume if k != 'name')}")
    return options


def _probes(container: Doc, run: RunPlan, container_ports: Mapping[str, int]) -> list[Probe]:
    probes = []
    for kind in ("startup", "liveness", "readiness"):
        spec = container.get(f"{kind}Probe")
        if not spec:
            continue
        handler = next(h for h in ("httpGet", "grpc", "tcpSocket", "exec") if h in spec)
        if handler == "exec":
            raise Unsupported(f"{kind} probe: exec")
        port = spec[handler]["port"]
        number = container_ports[port] if isinstance(port, str) else int(port)
        address = f"{LOOPBACK}:{run.listeners[number]}"
        if handler == "httpGet":
            probes.append(Probe(kind, handler, f"http://{address}{spec[handler].get('path', '/')}"))
        else:
            probes.append(Probe(kind, handler, address, spec[handler].get("service", "")))
    return probes


def plan(
    cluster: Cluster,
    deployment: str,
    *,
    ports: Mapping[str, Mapping[int, int]],
    secrets: Mapping[str, Mapping[str, str]],
    volume_dir: Path,
    unset_env: Mapping[str, str] | None = None,
) -> RunPlan:
    """How to `docker run` the container of `deployment` as the kubelet would (module docstring).

    `unset_env` names variables of the manifest the test leaves unset on purpose, each with the reason
    (listed in `overrides`)."""
    pod = cluster.pod_spec(deployment)
    container = cluster.container(deployment)
    run = RunPlan(deployment, container["name"], container["image"], listeners=dict(ports[deployment]))
    run.options = ["--network", "host", "--restart", "no"]
    run.options += ["--stop-timeout", str(pod.get("terminationGracePeriodSeconds", 30))]
    run.options += _security_options(pod, container)
    run.options += _resource_options(container, run)
    run.options += _volume_options(pod, container, run, secrets, volume_dir)
    if container.get("workingDir"):
        run.options += ["--workdir", container["workingDir"]]
    if container.get("command"):
        run.options += ["--entrypoint", container["command"][0]]
        run.args = [*container["command"][1:]]
    run.args += list(container.get("args", []))
    if "envFrom" in container:
        raise Unsupported(f"{deployment}: envFrom")

    container_ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if "name" in p}
    if pod.get("enableServiceLinks", True):
        run.env.update(_service_links(cluster, ports))
    pod_name = f"{deployment}-imagetest"
    template_meta = cluster.deployments[deployment]["spec"]["template"]["metadata"]
    for item in container.get("env", []):
        if item["name"] in (unset_env or {}):
            run.overrides.append(f"{item['name']}: unset ({(unset_env or {})[item['name']]})")
            continue
        value = _env_value(item, cluster, secrets, pod_name, template_meta)
        if value is None:
            continue
        # Literal values name the cluster's addresses; Secret values are the test's own (already local).
        here = localize(value, cluster, ports) if "value" in item else value
        if value in ("0.0.0.0", "::"):
            here = LOOPBACK  # bind the loopback only: the host's network is shared
        elif item["name"].endswith("PORT") and value.isdigit() and int(value) in run.listeners:
            here = str(run.listeners[int(value)])
        if here != value:
            run.overrides.append(f"{item['name']}: {value} -> {here}")
        run.env[item["name"]] = here
    run.probes = _probes(container, run, container_ports)
    return run
