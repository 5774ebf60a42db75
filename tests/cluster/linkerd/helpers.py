"""Helpers of the Linkerd live checks (`make verify MESH=linkerd [LAB=...]`).

Everything here talks to the real kind cluster `shop` through kubectl and the pinned linkerd CLI; requests
are sent from throwaway curl pods INSIDE the mesh (the Linkerd proxy of the caller applies routes, retries,
timeouts and circuit breaking). Without a reachable cluster with Linkerd, every test is skipped with the
reason (see conftest.py). Shared helpers (pods, statistics, the shop journey): tests/cluster/helpers.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import KUBE_CONTEXT, NAMESPACE

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTEXT = KUBE_CONTEXT
Doc = dict[str, Any]


def _tool(name: str) -> str:
    local = REPO_ROOT / "bin" / name
    return str(local) if local.is_file() else (shutil.which(name) or name)


def kubectl(*args: str, input: str | None = None, timeout: float = 60, check: bool = True) -> str:
    proc = subprocess.run(
        [_tool("kubectl"), "--context", CONTEXT, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def linkerd(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("linkerd"), "--context", CONTEXT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def reachable() -> str | None:
    """None when the cluster runs Linkerd and the shop; else the reason to skip."""
    if not shutil.which(_tool("kubectl")):
        return "kubectl not found (run `make up MESH=linkerd`, which pins it into ./bin)"
    try:
        kubectl("get", "--raw", "/readyz", timeout=10)
    except (AssertionError, subprocess.TimeoutExpired):
        return f"no reachable cluster for context {CONTEXT} (start it with `make up MESH=linkerd`)"
    if kubectl("get", "namespace", "linkerd", check=False, timeout=10) == "":
        return "Linkerd is not installed in the cluster (`make mesh MESH=linkerd`)"
    if kubectl("get", "namespace", NAMESPACE, check=False, timeout=10) == "":
        return f"the shop (namespace {NAMESPACE}) is not deployed (`make up MESH=linkerd`)"
    return None


def require_lab(kind: str, name: str, lab: str) -> Doc:
    """The lab resource as JSON, or skip with the command that applies the lab."""
    out = kubectl("-n", NAMESPACE, "get", kind, name, "-o", "json", check=False)
    if not out:
        pytest.skip(f"lab {lab} is not applied: make lab LAB={lab} MESH=linkerd")
    return json.loads(out)


@dataclass
class Reply:
    """One answer: status (000 = no HTTP answer), who served it (empty: not the shop, e.g. the proxy refused),
    duration, and the `l5d-proxy-error` header a Linkerd proxy adds to answers it makes itself (to meshed
    clients only, e.g. "unauthorized request on route")."""

    status: int
    served_by: str
    seconds: float
    proxy_error: str = ""


class MeshClient:
    """Wraps a CurlPod (tests/cluster/helpers.py): a curl pod with a chosen ServiceAccount (= Linkerd
    identity), with or without a Linkerd proxy, plus request loops run inside the pod."""

    def __init__(self, pod: Any, service_account: str, meshed: bool) -> None:
        self.pod, self.name, self.sa, self.meshed = pod, pod.name, service_account, meshed

    def sh(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        res = self.pod.exec(["sh", "-c", script], timeout=int(timeout))
        return subprocess.CompletedProcess(["sh", "-c", script], res.returncode, res.stdout, res.stderr)

    def requests(
        self,
        url: str,
        n: int,
        headers: dict[str, str] | None = None,
        max_time: float = 15,
        pause: float = 0,
    ) -> list[Reply]:
        """n sequential GETs (`pause` seconds apart): a Reply for each."""
        hdrs = " ".join(f"-H '{k}: {v}'" for k, v in (headers or {}).items())
        wait = f"sleep {pause}; " if pause else ""
        fields = "%{http_code}|%header{x-served-by}|%{time_total}|%header{l5d-proxy-error}"
        script = (
            f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); {wait}"
            f"curl -s -o /dev/null --max-time {max_time} {hdrs} "
            f"-w '{fields}\\n' '{url}'; done"
        )
        proc = self.sh(script, timeout=n * (max_time + pause + 1) + 60)
        replies = []
        for line in proc.stdout.splitlines():
            status, served_by, seconds, proxy_error = line.split("|", 3)
            replies.append(Reply(int(status), served_by, float(seconds), proxy_error))
        assert len(replies) == n, f"expected {n} replies from {url}, got {len(replies)}: {proc.stderr}"
        return replies

    def metrics_settle(self) -> None:
        """Give viz's Prometheus (10 s scrape interval) time to scrape this pod's proxy."""
        time.sleep(25)


def stat_outbound(resource: str, window: str = "1m") -> list[Doc]:
    """`linkerd viz stat-outbound <resource> -o json`: per route and per backend rows of the caller."""
    proc = linkerd("viz", "stat-outbound", resource, "-n", NAMESPACE, "-t", window, "-o", "json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "[]")
