"""Run the real servers of a mesh's webhooks as local processes, for the simulated cluster's pods.

kwok simulates every pod: it sets a pod Running and Ready, but no container runs. For the shop's pods that
is the point. For a mesh's admission webhooks it is not enough: `istioctl install` registers a mutating
webhook (sidecar injection) and a validating webhook (Istio's config validation) whose server is the
`istiod` pod, and the API server calls them on every pod and every Istio resource it admits. With nobody
answering, injection would fail (failurePolicy: Fail) or be skipped, and nothing would show what injection
does to the shop's pods.

So, like a kubelet for exactly these pods, this module watches the mesh's control-plane Deployments and runs
the same program their container runs, built from the same source (scripts/tools.conf: `pilot-discovery`,
the binary in Istio's `pilot` image), with the container's own arguments and environment, on 127.0.0.1:

| Deployment | program | listens (container port -> here) |
|---|---|---|
| istio-system/istiod | pilot-discovery discovery | 15017 webhooks, 8080, 15010, 15012, 15014 -> free |

It reads its mesh config and injection templates from the cluster's ConfigMaps (as istiod does whenever the
mounted files are absent), creates its CA and serving certificate itself and patches the webhooks' caBundle
itself, as in a cluster. The API server reaches it through scripts/sim/egress.py, which maps the istiod
Service's port 443 to the container port 15017's local address (the `backend` method below).

When the Deployment goes (istioctl uninstall), the process is stopped; when its container spec changes, it is
restarted. Deviations from a real pod, all documented in docs/kubernetes.md: the process runs as this user,
without the pod's mounted files (service account token, optional cacerts and remote kubeconfig Secrets);
KUBECONFIG and --kubeconfig point at the simulated cluster; a `resourceFieldRef` to a limit the container
does not set is left out (Go then uses this machine's cores, not the node's simulated allocatable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.dev import free_port, stop_process
from scripts.sim.egress import ServicePort

log = logging.getLogger("sim.controlplane")


@dataclass(frozen=True, eq=False)  # one object per workload: hashed by identity
class Workload:
    """A control-plane Deployment whose container this module runs for real."""

    namespace: str
    deployment: str
    container: str
    binary: str  # name in ./bin (scripts/tools.conf recipe)
    # container port -> the flag that sets the address the program listens on for it
    listen_flags: dict[int, str]
    # further flags: name -> value given a free port (ports the program opens that the pod spec does not list)
    extra_port_flags: tuple[str, ...] = ()


ISTIOD = Workload(
    namespace="istio-system",
    deployment="istiod",
    container="discovery",
    binary="pilot-discovery",
    listen_flags={
        8080: "--httpAddr",
        15010: "--grpcAddr",
        15012: "--secureGRPCAddr",
        15017: "--httpsAddr",
        15014: "--monitoringAddr",
    },
    extra_port_flags=("--ctrlz_port",),
)
WORKLOADS = (ISTIOD,)
# The provisioner of kind's default StorageClass `standard` (sim-up creates the same class).
PROVISIONER = "rancher.io/local-path"


@dataclass
class Running:
    """A started process and what it was started from."""

    workload: Workload
    process: subprocess.Popen[bytes]
    spec_hash: str
    ports: dict[int, int]  # container port -> local port
    pod_labels: dict[str, str]
    port_names: dict[str, int]  # the container's named ports (a Service's targetPort may name one)
    started: float = field(default_factory=time.monotonic)


class ControlPlane:
    """Keeps one local process per present WORKLOADS Deployment; answers which local port serves a Service."""

    def __init__(
        self, api_client: Any, bin_dir: Path, work_dir: Path, kubeconfig: Path, context: str
    ) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.kubeconfig = kubeconfig
        self.context = context
        self.running: dict[Workload, Running] = {}
        self._lock = threading.Lock()
        self._services: dict[tuple[str, str], Any] = {}
        self._by_cluster_ip: dict[str, tuple[str, str]] = {}
        self._services_read = 0.0

    # --- the reconcile loop ------------------------------------------------------------------------------

    def reconcile(self) -> None:
        for workload in WORKLOADS:
            try:
                self._reconcile(workload)
            except Exception:
                log.exception("reconciling %s/%s failed", workload.namespace, workload.deployment)
        try:
            self._provision_volumes()
        except Exception:
            log.exception("provisioning volumes failed")

    # --- volumes: kind's local-path provisioner, for simulated pods ------------------------------------

    def _provision_volumes(self) -> None:
        """What kind's local-path provisioner does for its `standard` StorageClass (sim-up creates the same
        class): a PersistentVolume for each claim the scheduler has placed on the node (WaitForFirstConsumer),
        and the released ones deleted (reclaimPolicy Delete). No volume is ever mounted: no container runs."""
        from kubernetes import client

        for pvc in self.core.list_persistent_volume_claim_for_all_namespaces().items:
            annotations = pvc.metadata.annotations or {}
            node = annotations.get("volume.kubernetes.io/selected-node")
            if pvc.status.phase != "Pending" or pvc.spec.volume_name or not node:
                continue
            if annotations.get("volume.kubernetes.io/storage-provisioner") != PROVISIONER:
                continue
            name = f"pvc-{pvc.metadata.uid}"
            ns, claim = pvc.metadata.namespace, pvc.metadata.name
            volume = client.V1PersistentVolume(
                metadata=client.V1ObjectMeta(
                    name=name, annotations={"pv.kubernetes.io/provisioned-by": PROVISIONER}
                ),
                spec=client.V1PersistentVolumeSpec(
                    capacity={"storage": pvc.spec.resources.requests["storage"]},
                    access_modes=pvc.spec.access_modes,
                    persistent_volume_reclaim_policy="Delete",
                    storage_class_name=pvc.spec.storage_class_name,
                    volume_mode=pvc.spec.volume_mode,
                    claim_ref=client.V1ObjectReference(
                        kind="PersistentVolumeClaim", namespace=ns, name=claim, uid=pvc.metadata.uid
                    ),
                    host_path=client.V1HostPathVolumeSource(
                        path=f"/var/local-path-provisioner/{name}_{ns}_{claim}", type="DirectoryOrCreate"
                    ),
                    node_affinity=client.V1VolumeNodeAffinity(
                        required=client.V1NodeSelector(
                            node_selector_terms=[
                                client.V1NodeSelectorTerm(
                                    match_expressions=[
                                        client.V1NodeSelectorRequirement(
                                            key="kubernetes.io/hostname", operator="In", values=[node]
                                        )
                                    ]
                                )
                            ]
                        )
                    ),
                ),
            )
            self.core.create_persistent_volume(volume)
            log.info("provisioned %s for claim %s/%s on node %s", name, ns, claim, node)
        for pv in self.core.list_persistent_volume().items:
            provisioned_by = (pv.metadata.annotations or {}).get("pv.kubernetes.io/provisioned-by")
            if provisioned_by == PROVISIONER and pv.status.phase == "Released":
                self.core.delete_persistent_volume(pv.metadata.name)
                log.info("deleted released volume %s", pv.metadata.name)

    def _reconcile(self, workload: Workload) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            deployment = self.apps.read_namespaced_deployment(workload.deployment, workload.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            deployment = None
        current = self.running.get(workload)
        if (
            deployment is None
            or deployment.metadata.deletion_timestamp
            or not (deployment.spec.replicas or 0)
        ):
            if current is not None:
                log.info(
                    "%s/%s is gone or scaled to 0: stopping its process",
                    workload.namespace,
                    workload.deployment,
                )
                self._stop(workload)
            return
        container = next(
            (c for c in deployment.spec.template.spec.containers if c.name == workload.container), None
        )
        if container is None:
            log.warning("deployment %s has no container %s", workload.deployment, workload.container)
            return
        spec_hash = hashlib.sha256(
            json.dumps(self.apps.api_client.sanitize_for_serialization(container), sort_keys=True).encode()
        ).hexdigest()[:12]
        if current is not None and current.process.poll() is None and current.spec_hash == spec_hash:
            return
        if current is not None:
            why = "its container spec changed" if current.process.poll() is None else "it exited"
            log.info("%s: restarting (%s, exit code %s)", workload.binary, why, current.process.poll())
            self._stop(workload)
            if why == "it exited" and time.monotonic() - current.started < 5:
                time.sleep(2)  # crash loop: back off a little, as the kubelet does
        self._start(workload, deployment, container, spec_hash)

    def _start(self, workload: Workload, deployment: Any, container: Any, spec_hash: str) -> None:
        binary = self.bin_dir / workload.binary
        if not os.access(binary, os.X_OK):
            log.error(
                "%s is missing: run make tools (or make sim-up); %s stays unserved",
                binary,
                workload.deployment,
            )
            return
        ports = {port: free_port() for port in workload.listen_flags}
        args = [str(binary), *(container.args or [])]
        # Later flags win (pflag): the container's own listen addresses become free ports on 127.0.0.1.
        args += [f"{flag}=127.0.0.1:{ports[port]}" for port, flag in workload.listen_flags.items()]
        args += [f"{flag}={free_port()}" for flag in workload.extra_port_flags]
        args += [f"--kubeconfig={self.kubeconfig}"]
        env = self._environment(deployment, container)
        run_dir = self.work_dir / workload.deployment
        run_dir.mkdir(parents=True, exist_ok=True)
        logfile = (self.work_dir / "logs" / f"{workload.deployment}.log").open("ab")
        log.info(
            "starting %s for %s/%s: %s",
            workload.binary,
            workload.namespace,
            workload.deployment,
            " ".join(args),
        )
        process = subprocess.Popen(
            args, cwd=run_dir, env=env, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        logfile.close()
        with self._lock:
            self.running[workload] = Running(
                workload,
                process,
                spec_hash,
                ports,
                dict(deployment.spec.template.metadata.labels or {}),
                {p.name: p.container_port for p in container.ports or [] if p.name},
            )

    def _environment(self, deployment: Any, container: Any) -> dict[str, str]:
        """The container's environment as the kubelet would give it, on this machine (module docstring)."""
        from kubernetes.utils import parse_quantity

        pod = self._one_pod(deployment)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work_dir)}
        fields = {
            "metadata.name": pod.metadata.name if pod else f"{deployment.metadata.name}-sim",
            "metadata.namespace": deployment.metadata.namespace,
            "spec.serviceAccountName": deployment.spec.template.spec.service_account_name or "default",
            "spec.nodeName": (pod.spec.node_name if pod else "") or "",
            "status.podIP": (pod.status.pod_ip if pod and pod.status else "") or "",
        }
        limits = (container.resources.limits if container.resources else None) or {}
        for var in container.env or []:
            source = var.value_from
            if source is None:
                env[var.name] = var.value or ""
            elif source.field_ref is not None:
                env[var.name] = fields.get(source.field_ref.field_path, "")
            elif source.resource_field_ref is not None:
                ref = source.resource_field_ref
                resource = ref.resource.removeprefix("limits.").removeprefix("requests.")
                value = limits.get(resource)
                if value is None:
                    continue  # no limit: Go's defaults (this machine), see the module docstring
                divisor = parse_quantity(ref.divisor or "1")
                env[var.name] = str(max(1, int(-(-parse_quantity(value) // divisor))))
            elif source.config_map_key_ref is not None:
                ref = source.config_map_key_ref
                cm = self.core.read_namespaced_config_map(ref.name, deployment.metadata.namespace)
                env[var.name] = (cm.data or {}).get(ref.key, "")
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def _one_pod(self, deployment: Any) -> Any:
        selector = ",".join(f"{k}={v}" for k, v in (deployment.spec.selector.match_labels or {}).items())
        pods = self.core.list_namespaced_pod(deployment.metadata.namespace, label_selector=selector).items
        return pods[0] if pods else None

    def _stop(self, workload: Workload) -> None:
        with self._lock:
            current = self.running.pop(workload, None)
        if current is None:
            return
        if current.process.poll() is None:
            log.info("%s: %s", workload.binary, usage(current))
        stop_process(current.process)

    def stop_all(self) -> None:
        for workload in list(self.running):
            self._stop(workload)

    # --- what the egress proxy asks ----------------------------------------------------------------------

    def service_for(self, cluster_ip: str, port: int) -> ServicePort | None:
        """The Service port behind ClusterIP:port (services read from the API server, cached)."""
        key = self._by_cluster_ip.get(cluster_ip)
        if key is None and time.monotonic() - self._services_read > 0.5:
            self._read_services()
            key = self._by_cluster_ip.get(cluster_ip)
        if key is None:
            return None
        service = self._services[key]
        if not any(p.port == port for p in service.spec.ports or []):
            return None
        return ServicePort(key[0], key[1], port)

    def _read_services(self) -> None:
        services = self.core.list_service_for_all_namespaces().items
        self._services = {(s.metadata.namespace, s.metadata.name): s for s in services}
        self._by_cluster_ip = {
            ip: key
            for key, s in self._services.items()
            for ip in (s.spec.cluster_ips or [s.spec.cluster_ip])
            if ip and ip != "None"
        }
        self._services_read = time.monotonic()

    def backend(self, service_port: ServicePort) -> tuple[str, int] | None:
        """127.0.0.1:<port> of the local process that serves this Service port, or None."""
        service = self._services.get((service_port.namespace, service_port.name))
        if service is None or not service.spec.selector:
            return None
        with self._lock:
            candidates = list(self.running.values())
        for run in candidates:
            if run.workload.namespace != service_port.namespace or run.process.poll() is not None:
                continue
            if not all(run.pod_labels.get(k) == v for k, v in service.spec.selector.items()):
                continue
            for p in service.spec.ports or []:
                if p.port != service_port.port:
                    continue
                target = p.target_port if p.target_port is not None else p.port
                container_port = _container_port(run, target)
                if container_port in run.ports:
                    return ("127.0.0.1", run.ports[container_port])
        return None


def _container_port(run: Running, target: int | str) -> int | None:
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    return run.port_names.get(str(target))  # a named targetPort, e.g. https-webhooks


def usage(run: Running) -> str:
    """What the process cost so far: CPU seconds (user + system), resident memory, wall time."""
    import psutil

    try:
        proc = psutil.Process(run.process.pid)
        cpu = proc.cpu_times()
        rss = proc.memory_info().rss
    except psutil.Error as exc:
        return f"usage unknown ({exc})"
    return (
        f"used {cpu.user + cpu.system:.1f} s CPU, {rss / 2**20:.0f} MiB resident, "
        f"in {time.monotonic() - run.started:.0f} s"
    )


def run_forever(control_plane: ControlPlane, stop: threading.Event, period: float = 1.0) -> None:
    """Reconcile every `period` seconds until `stop` is set, then stop every process."""
    try:
        while not stop.is_set():
            control_plane.reconcile()
            stop.wait(period)
    finally:
        control_plane.stop_all()
