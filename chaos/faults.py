"""The fault actions of the scenarios. `apply(fault)` injects one fault, holds it, and returns when what
it broke is back (the schedule in chaos/run.py measures that as the fault's window).

Local (a stack of scripts/dev.py):
  kill           kill -9 one service mid-load, then start it again at once (what a crash plus a
                 restart policy does); back when its /readyz answers 200
  kill-database  kill -9 FerretDB, `hold` seconds without a database, start it again on the same data
  proxy-fault    the fault proxy in front of `service` (chaos/fault_proxy.py) delays (`delay_ms`) and/or
                 answers `abort_percent` % of the calls with `abort_status`, for `hold` seconds

Cluster (kubectl on the shop's context, kind-shop or KUBE_CONTEXT, namespace ecommerce; DRY_RUN prints
the commands):
  delete-pod     delete the service's pods; back when its Deployment has rolled out again
  scale-to-zero  scale the Deployment to 0 for `hold` seconds, then back to 1
  apply          kubectl apply the lab files (e.g. Istio's fault VirtualService) for `hold` seconds, then
                 delete them
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from chaos.scenario import Fault
from scripts.dev import FerretDB, Stack, free_port
from services import topology

ROOT = Path(__file__).resolve().parent.parent
# How long a (re)started service may take to answer /readyz: Python's imports alone took 2 minutes at a
# load of 49 on 2 cores.
STARTUP_SECONDS = 300.0


class LocalFaults:
    def __init__(self, database: FerretDB, logs: Path) -> None:
        self.database = database
        self.logs = logs
        self.stack: Stack | None = None
        self.proxies: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

    def start_proxy(self, service: str, upstream: str) -> str:
        """A fault proxy in front of `service`; its URL, which the callers of the service get instead."""
        port = free_port()
        log = (self.logs / f"proxy-{service}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "chaos.fault_proxy", "--port", str(port), "--upstream", upstream],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/_chaos/fault", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the fault proxy for {service} did not start (log: {log.name})"
                    ) from None
                time.sleep(0.2)
        self.proxies[service] = (process, url)
        return url

    def set_proxy_fault(self, service: str, **fault: float) -> None:
        _, url = self.proxies[service]
        request = urllib.request.Request(
            f"{url}/_chaos/fault",
            data=json.dumps(fault).encode(),
            method="PUT",
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()

    def apply(self, fault: Fault) -> None:
        assert self.stack is not None
        if fault.action == "kill":
            assert fault.service
            self.stack.kill(fault.service)
            time.sleep(fault.hold)
            self.stack.restart(fault.service, timeout=STARTUP_SECONDS)
        elif fault.action == "kill-database":
            self.database.kill()
            time.sleep(fault.hold)
            self.database.start()
        elif fault.action == "proxy-fault":
            assert fault.service
            if fault.service not in self.proxies:
                raise RuntimeError(f"no fault proxy in front of {fault.service}: list it under `proxies:`")
            self.set_proxy_fault(
                fault.service,
                abort_percent=fault.abort_percent,
                abort_status=fault.abort_status,
                delay_ms=fault.delay_ms,
            )
            time.sleep(fault.hold)
            self.set_proxy_fault(fault.service)
        else:
            raise ValueError(f"not a local fault: {fault.action}")

    def close(self) -> None:
        for process, _ in self.proxies.values():
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class ClusterFaults:
    def __init__(self, mesh: str, dry_run: bool) -> None:
        self.mesh = mesh
        self.dry_run = dry_run

    def run(self, *command: str) -> None:
        print("+ " + " ".join(command), flush=True)
        if not self.dry_run:
            subprocess.run(command, cwd=ROOT, check=True, timeout=300)

    def kubectl(self, *args: str) -> None:
        """The pinned ./bin/kubectl (make tools) when present, on the shop's context: kind-<CLUSTER_NAME>,
        or KUBE_CONTEXT (e.g. the simulated cluster's)."""
        pinned = ROOT / "bin" / "kubectl"
        binary = "bin/kubectl" if pinned.exists() else "kubectl"
        context = os.environ.get("KUBE_CONTEXT") or f"kind-{topology.CLUSTER_NAME}"
        self.run(binary, "--context", context, "-n", topology.NAMESPACE, *args)

    def sleep(self, seconds: float) -> None:
        print(f"+ sleep {seconds:g}", flush=True)
        if not self.dry_run:
            time.sleep(seconds)

    def apply(self, fault: Fault) -> None:
        if fault.action == "delete-pod":
            self.kubectl("delete", "pod", "-l", f"app={fault.service}", "--wait=false")
            self.kubectl("rollout", "status", f"deployment/{fault.service}", "--timeout=180s")
        elif fault.action == "scale-to-zero":
            self.kubectl("scale", f"deployment/{fault.service}", "--replicas=0")
            self.sleep(fault.hold)
            self.kubectl("scale", f"deployment/{fault.service}", "--replicas=1")
            self.kubectl("rollout", "status", f"deployment/{fault.service}", "--timeout=180s")
        elif fault.action == "apply":
            missing = [f for f in fault.files if not (ROOT / f).exists()]
            if missing:
                raise RuntimeError(f"fault files not in the repo: {missing}")
            self.kubectl("apply", *[a for f in fault.files for a in ("-f", f)])
            self.sleep(fault.hold)
            self.kubectl("delete", "--ignore-not-found", *[a for f in fault.files for a in ("-f", f)])
        else:
            raise ValueError(f"not a cluster fault: {fault.action}")
