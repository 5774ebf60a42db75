"""CPU-heavy work (password hashing, key generation) off the event loop, on a small FIXED pool of threads.

Use `CpuPool.run` for anything that burns CPU or allocates large buffers; never `anyio.to_thread.run_sync`,
`asyncio.to_thread`, `loop.run_in_executor(None, ...)` or a sync (`def`) FastAPI endpoint or dependency, which
all run on shared pools that grow with concurrency (anyio: up to 40 threads).

Why it matters: glibc gives each thread that allocates its own malloc arena and keeps what the thread
frees there for reuse. Argon2 (services/auth/passwords.py) allocates 19 MiB per hash, so on a growing pool
every thread that ever hashed holds on to its own 19 MiB: a burst of ~24 logins took auth past its 256 MiB
limit (OOM-killed), even though a semaphore let only two hashes run at a time. A fixed pool of N threads
touches at most N arenas, so memory stays bounded by N x the work's buffers, however many requests arrive;
the others wait in the queue (small closures). Cancelling the awaiting request drops a job not yet started.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class CpuPool:
    """A named pool of at most `threads` worker threads (started on first use, kept for good)."""

    def __init__(self, name: str, threads: int = 2) -> None:
        if threads < 1:
            raise ValueError("a CpuPool needs at least one thread")
        self.name = name
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"cpu-{name}")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on one of the pool's threads; return its result or raise its error."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
