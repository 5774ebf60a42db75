"""Helpers of the simulated-cluster suite (`make sim-test`): run the student's commands, read the real API.

Everything here talks to the simulated cluster of `make sim-up` (.cache/sim/kubeconfig, context kwok-shop):
the real kube-apiserver, controllers and scheduler, with kwok simulating the node and the pods. Commands run
exactly as a student types them, plus CLUSTER=sim (mk/sim.mk); nothing is stubbed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services import topology

ROOT = Path(__file__).resolve().parents[2]
SIM_DIR = ROOT / ".cache" / "sim"
KUBECONFIG = SIM_DIR / "kubeconfig"
CONTEXT = f"kwok-{topology.CLUSTER_NAME}"
NAMESPACE = topology.NAMESPACE
BIN = ROOT / "bin"
Doc = dict[str, Any]


def sim_env(**extra: str) -> dict[str, str]:
    """The environment the suite's commands run in: the student's, plus CLUSTER=sim and the sim kubeconfig."""
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    env.update(CLUSTER="sim", KUBECONFIG=str(KUBECONFIG), DRY_RUN="0", PATH=f"{BIN}:{env.get('PATH', '')}")
    env.update(extra)
    return env


@dataclass
class Result:
    argv: list[str]
    returncode: int
    output: str  # stdout and stderr, interleaved
    seconds: float

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run(
    argv: list[str], *, cwd: Path = ROOT, timeout: float = 900, env: dict[str, str] | None = None
) -> Result:
    start = time.monotonic()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env or sim_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return Result(argv, proc.returncode, proc.stdout, time.monotonic() - start)


def make(*args: str, cwd: Path = ROOT, timeout: float = 900, check: bool = True) -> Result:
    """`make <args>` with CLUSTER=sim, as a student runs it. check: fail the test with the output's tail."""
    result = run(["make", "--no-print-directory", *args], cwd=cwd, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"`make {' '.join(args)}` exited {result.returncode} after {result.seconds:.0f} s:\n"
            + result.tail()
        )
    return result


def kubectl(*args: str, check: bool = True, stdin: str | None = None, timeout: float = 120) -> str:
    argv = [str(BIN / "kubectl"), "--context", CONTEXT, *args]
    proc = subprocess.run(
        argv, env=sim_env(), input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"`kubectl {' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr


def get_json(*args: str) -> Doc:
    out: Doc = json.loads(kubectl("get", *args, "-o", "json"))
    return out


def items(*args: str) -> list[Doc]:
    return list(get_json(*args).get("items", []))


def exists(*args: str) -> bool:
    proc = subprocess.run(
        [str(BIN / "kubectl"), "--context", CONTEXT, "get", *args, "-o", "name"],
        env=sim_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode == 0 and bool(proc.stdout.strip())


def apply_manifest(docs: Iterable[Doc], *, server_side: bool = False) -> subprocess.CompletedProcess[str]:
    """kubectl apply -f - of these documents (not checked: the planted-mistake tests read the refusal)."""
    argv = [str(BIN / "kubectl"), "--context", CONTEXT, "apply", "-f", "-"]
    if server_side:
        argv.insert(3, "--server-side")
    return subprocess.run(
        argv, env=sim_env(), input=yaml.safe_dump_all(list(docs)), capture_output=True, text=True, timeout=120
    )


def render(kustomize_dir: Path) -> list[Doc]:
    out = kubectl("kustomize", str(kustomize_dir))
    return [d for d in yaml.safe_load_all(out) if d]


def current_mesh() -> str:
    if exists("-n", "istio-system", "deployment", "istiod"):
        return "istio"
    if exists("namespace", "linkerd"):
        return "linkerd"
    return "none"


def wait_for(what: str, predicate: Any, timeout: float = 60, period: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(period)


def cluster_processes() -> dict[int, str]:
    """pid -> command line of every process of the simulated cluster: those whose command line names its
    folder (kwokctl's components), and the helper's process group (its pid file; istiod runs in it)."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True
    ).stdout
    pidfile = SIM_DIR / "controlplane.pid"
    helper = pidfile.read_text().strip() if pidfile.exists() else None
    found = {}
    for line in out.splitlines():
        pid, pgid, args = line.split(None, 2)
        if str(SIM_DIR) in args or pgid == helper:
            found[int(pid)] = args
    return found


def output_held_outside(pids: Iterable[int], folder: Path = SIM_DIR) -> dict[int, list[str]]:
    """pid -> where its stdout/stderr go, for each process whose output is neither a file in `folder` nor
    /dev/null: a daemon that kept its starter's pipe keeps every reader of that pipe waiting for its end
    (a `make up | tee`, a test capturing make's output) for as long as the cluster runs."""
    held = {}
    for pid in pids:
        targets = []
        for fd in (1, 2):
            try:
                targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:  # ended meanwhile, or the fd is closed
                continue
        outside = [t for t in targets if t != "/dev/null" and not t.startswith(f"{folder}/")]
        if outside:
            held[pid] = outside
    return held


def tool(name: str) -> str | None:
    """The pinned tool in ./bin, or None when `make tools` could not provide it."""
    path = BIN / name
    return str(path) if path.exists() and os.access(path, os.X_OK) else None


# --- the cluster's objects, for "nothing left behind" and "equal to the plain overlay" -------------------

# Metadata the API server or controllers write, and the pod template annotation `rollout restart` sets.
VOLATILE_METADATA = {
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "ownerReferences",
}


def comparable(obj: Doc) -> Doc:
    """An object without status and server-written metadata: what a student's manifests decide."""
    out = {k: v for k, v in obj.items() if k != "status"}
    if obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/tls":
        # The labs' TLS certificates are generated when a lab is applied (the gateway and egress labs'
        # pre-apply.sh): the bytes differ on every apply, the keys a manifest mounts do not.
        out["data"] = sorted(out.get("data") or {})
    spec = out.get("spec")
    if obj.get("kind") == "Service" and isinstance(spec, dict):
        # The API server allocates cluster IPs; a re-created Service gets a new one.
        out["spec"] = {k: v for k, v in spec.items() if k not in ("clusterIP", "clusterIPs")}
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in VOLATILE_METADATA}
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("deployment.kubernetes.io/revision", None)
    meta["annotations"] = annotations
    out["metadata"] = meta
    template = out.get("spec", {}).get("template", {}).get("metadata")
    if isinstance(template, dict):
        # `kubectl rollout restart` stamps restartedAt; a later `kubectl apply` that removes the last
        # annotation its previous config set drops the whole map, restartedAt with it (its three-way merge
        # patches `annotations: null`): neither is a manifest's decision.
        template["annotations"] = {
            k: v
            for k, v in (template.get("annotations") or {}).items()
            if k != "kubectl.kubernetes.io/restartedAt"
        }
    return out


def snapshot(namespaces: Iterable[str], kinds: Iterable[str]) -> dict[str, Doc]:
    """kind/namespace/name -> comparable object, for every object of `kinds` in `namespaces` (one kubectl
    call per namespace; every kind must be known to the API server)."""
    found: dict[str, Doc] = {}
    kinds = ",".join(kinds)
    for ns in namespaces:
        if not exists("namespace", ns):
            continue
        for obj in items("-n", ns, kinds):
            found[f"{obj['kind']}/{ns}/{obj['metadata']['name']}"] = comparable(obj)
    return found


# --- "the cluster holds exactly the plain overlay" ---------------------------------------------------------

APP_KINDS = "deployments,statefulsets,services,configmaps,serviceaccounts,secrets"
# Objects in the shop's namespace that no manifest renders: the controllers' and the mesh's own, and the
# Secrets scripts/secrets.sh generates at deploy time.
AUTO_CREATED = {
    "ConfigMap/kube-root-ca.crt",
    "ServiceAccount/default",
    "ConfigMap/istio-ca-root-cert",
    "ConfigMap/istio-ca-crl",
}


def app_kustomization(mesh: str) -> Path:
    """The kustomization make up/mesh/lab-reset last applied for `mesh` (lib.sh write_app_kustomization)."""
    return ROOT / ".cache" / "app" / mesh


def contains(live: object, wanted: object) -> bool:
    """`wanted` (a manifest) is part of `live` (the object after the API server's defaulting)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(contains, live, wanted))
    return live == wanted or str(live) == str(wanted)


def first_difference(live: object, wanted: object, path: str = "") -> str | None:
    """Where `wanted` is not part of `live` (see `contains`): a dotted path and both values, or None."""
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return f"{path}: {live!r:.120} is not a mapping"
        for key, value in wanted.items():
            if key not in live:
                return f"{path}.{key}: missing (the overlay sets {value!r:.120})"
            found = first_difference(live[key], value, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(wanted, list):
        if not isinstance(live, list) or len(live) != len(wanted):
            return f"{path}: {live!r:.160} != the overlay's {wanted!r:.160}"
        for index, (have, want) in enumerate(zip(live, wanted, strict=True)):
            found = first_difference(have, want, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if contains(live, wanted) else f"{path}: {live!r:.120} != the overlay's {wanted!r:.120}"


def plain_overlay_differences(mesh: str) -> list[str]:
    """How the shop's namespace differs from the app overlay of `mesh` as rendered now: objects no manifest
    renders (beyond AUTO_CREATED and the generated Secrets), rendered objects missing, fields that differ,
    pod template labels or annotations the overlay does not set (a lab's or another mesh's left-overs)."""
    from services import topology

    rendered = render(app_kustomization(mesh))
    wanted = {
        f"{d['kind']}/{d['metadata']['name']}": d
        for d in rendered
        if d["metadata"].get("namespace") == NAMESPACE
    }
    generated = {"Secret/mongodb-root", "Secret/mongodb-users", "Secret/auth-jwt", "Secret/frontend-session"}
    generated |= {"Secret/service-clients"} | {f"Secret/mongo-{s}" for s in topology.SERVICES}
    out = []
    # The overlay's custom resources (a mesh's routing and policy) count too: kind.group, as kubectl takes it.
    custom = sorted(
        {
            f"{d['kind'].lower()}.{d['apiVersion'].split('/')[0]}"
            for d in wanted.values()
            if "." in d["apiVersion"]
        }
    )
    live = {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in items("-n", NAMESPACE, ",".join([APP_KINDS, *custom]))
    }
    for key in sorted(live.keys() - wanted.keys() - AUTO_CREATED - generated):
        if live[key]["kind"] == "Secret" and live[key].get("type") == "kubernetes.io/service-account-token":
            continue
        out.append(f"not in the overlay: {key}")
    out += [f"missing: {key}" for key in sorted(wanted.keys() - live.keys())]
    for key in sorted(wanted.keys() & live.keys()):
        want, have = wanted[key], live[key]
        for field in ("spec", "data"):
            if field in want and not contains(have.get(field), want[field]):
                out.append(f"changed: {key} {first_difference(have.get(field), want[field], field)}")
        for part in ("labels", "annotations"):
            extra = set(have["metadata"].get(part) or {}) - set(want["metadata"].get(part) or {})
            extra -= {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"}
            if extra:
                out.append(f"{key}: {part} not in the overlay: {sorted(extra)}")
        template = (want.get("spec") or {}).get("template")
        if template:
            for part in ("labels", "annotations"):
                have_t = dict(have["spec"]["template"]["metadata"].get(part) or {})
                have_t.pop("kubectl.kubernetes.io/restartedAt", None)
                if have_t != (template["metadata"].get(part) or {}):
                    out.append(f"{key}: pod template {part} {have_t} != the overlay's")
    namespace = get_json("namespace", NAMESPACE)["metadata"]
    want_ns = next((d for d in rendered if d["kind"] == "Namespace"), {"metadata": {}})["metadata"]
    for part in ("labels", "annotations"):
        have_ns = {
            k: v
            for k, v in (namespace.get(part) or {}).items()
            if k not in ("kubernetes.io/metadata.name", "kubectl.kubernetes.io/last-applied-configuration")
        }
        if have_ns != (want_ns.get(part) or {}):
            out.append(f"namespace {NAMESPACE} {part}: {have_ns} != the overlay's {want_ns.get(part) or {}}")
    return out


def shop_deployed() -> bool:
    return exists("-n", "ecommerce", "deployment", "frontend")


def labs_applied(mesh: str) -> bool:
    kinds = (
        "virtualservices.networking.istio.io,destinationrules.networking.istio.io,peerauthentications.security.istio.io,authorizationpolicies.security.istio.io,serviceentries.networking.istio.io,sidecars.networking.istio.io,deployments"
        if mesh == "istio"
        else "deployments,services,servers.policy.linkerd.io,httproutes.gateway.networking.k8s.io"
    )
    out = kubectl("-n", "ecommerce", "get", kinds, "-l", "lab", "-o", "name", check=False)
    return bool(out.strip()) and "error" not in out.lower()


def ensure_shop(mesh: str) -> None:
    """The shop runs on `mesh` with no lab applied, reached with the student's commands."""
    if not shop_deployed():
        make("up", f"MESH={mesh}")
    elif current_mesh() != mesh:
        make("mesh", f"MESH={mesh}")
    if mesh != "none" and labs_applied(mesh):
        make("lab-reset", f"MESH={mesh}")
