"""The docker CLI and the kernel's view of containers, for `make image-test`.

- `Docker`: runs the docker CLI `make image-test` picked (`$DOCKER`), labels every container it starts with
  the run's label so the script removes them all at the end, even after a crash.
- `Cgroup`: a running container's memory cgroup (v1 or v2), read directly: the kernel's peak charge
  (`memory.max_usage_in_bytes` / `memory.peak`), the working set (usage minus inactive file pages, what the
  kubelet and `kubectl top` report) and the OOM-kill count.
- `MemoryWatch`: samples the working set of several containers twice a second and keeps the peaks.
- `process_status`: what the kernel enforces on a container's main process (uid, groups, capabilities,
  no_new_privs, seccomp), from /proc/<pid>/status.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Docker:
    def __init__(self, cli: str, label: str) -> None:
        self.cli = cli
        self.label = label  # key=value on everything this run creates

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} ... failed: {proc.stderr.strip()[-2000:]}")
        return proc

    def run_detached(
        self, name: str, image: str, options: list[str], env: dict[str, str], args: list[str]
    ) -> str:
        env_options = [item for key, value in env.items() for item in ("--env", f"{key}={value}")]
        cmd = ["run", "--detach", "--name", name, "--label", self.label, *options, *env_options, image, *args]
        return self(*cmd).stdout.strip()

    def inspect(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self("inspect", name).stdout)[0]
        return data

    def image_env(self, image: str) -> dict[str, str]:
        env = json.loads(self("image", "inspect", "--format", "{{json .Config.Env}}", image).stdout) or []
        return dict(item.split("=", 1) for item in env)

    def logs(self, name: str, tail: int = 40) -> str:
        proc = self("logs", "--tail", str(tail), name, check=False)
        return (proc.stdout + proc.stderr).strip()

    def remove(self, *names: str) -> None:
        if names:
            self("rm", "--force", "--volumes", *names, check=False, timeout=60)


class Cgroup:
    """The memory cgroup of a process (a container's main process), v1 or v2."""

    def __init__(self, pid: int) -> None:
        self.v2 = False
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                self.dir = CGROUP_ROOT / "memory" / path.lstrip("/")
                break
        else:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
            self.dir, self.v2 = CGROUP_ROOT / path.lstrip("/"), True
        if not self.dir.is_dir():
            raise RuntimeError(f"memory cgroup of pid {pid} not found at {self.dir}")

    def _read(self, name: str) -> str:
        return (self.dir / name).read_text()

    def _stat(self) -> dict[str, int]:
        return {k: int(v) for k, v in (line.split() for line in self._read("memory.stat").splitlines())}

    def peak(self) -> int:
        """The kernel's highest charge since the container started (page cache included)."""
        return int(self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes"))

    def working_set(self) -> int:
        if self.v2:
            usage, inactive = int(self._read("memory.current")), self._stat().get("inactive_file", 0)
        else:
            usage, inactive = (
                int(self._read("memory.usage_in_bytes")),
                self._stat().get("total_inactive_file", 0),
            )
        return max(0, usage - inactive)

    def oom_kills(self) -> int:
        events = self._read("memory.events" if self.v2 else "memory.oom_control")
        counts = dict(line.split() for line in events.splitlines())
        return int(counts.get("oom_kill", 0))


class MemoryWatch:
    """Samples each container's working set every `interval` seconds in a thread; keeps the peaks."""

    def __init__(self, cgroups: dict[str, Cgroup], interval: float = 0.5) -> None:
        self.cgroups = cgroups
        self.interval = interval
        self.peaks = dict.fromkeys(cgroups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, cgroup in self.cgroups.items():
                with contextlib.suppress(OSError):  # the container is gone (the test reports why)
                    self.peaks[name] = max(self.peaks[name], cgroup.working_set())
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class ProcessStatus:
    uid: int
    gid: int
    groups: tuple[int, ...]
    effective_capabilities: int
    no_new_privs: bool
    seccomp_filtering: bool


def process_status(pid: int) -> ProcessStatus:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return ProcessStatus(
        uid=int(fields["Uid"].split()[1]),  # real, effective, saved, fs: the effective one
        gid=int(fields["Gid"].split()[1]),
        groups=tuple(int(g) for g in fields["Groups"].split()),
        effective_capabilities=int(fields["CapEff"].strip(), 16),
        no_new_privs=fields["NoNewPrivs"].strip() == "1",
        seccomp_filtering=fields["Seccomp"].strip() == "2",
    )


def wait_until(check: Any, timeout: float, interval: float = 0.5) -> Any:
    """`check()` again and again until truthy; return that, or raise TimeoutError with its last error."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"not within {timeout:.0f}s: {last!r}")
