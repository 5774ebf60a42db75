"""scripts.dev.stop_process: how the dev runner, Jaeger and the simulated cluster stop what they started."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from scripts.dev import stop_process

SLEEPS = "import time; print('up', flush=True); time.sleep(60)"
IGNORES_SIGTERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPS


@contextlib.contextmanager
def child(code: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"  # its handler is set
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_process_that_ends_on_sigterm_is_reaped_without_a_kill() -> None:
    with child(SLEEPS) as process:
        stop_process(process, grace=10)
        assert process.returncode == -15  # ended by SIGTERM, not SIGKILL (-9)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    with child(IGNORES_SIGTERM) as process:
        started = time.monotonic()
        stop_process(process, grace=0.5)
        waited = time.monotonic() - started
        assert process.returncode == -9 and 0.5 <= waited < 5, (process.returncode, waited)
        stop_process(process)  # a process already stopped: nothing happens
