"""Background work a service repeats while it runs (order's checkout settler and shipment tracker).

`repeat(work, every_seconds=..., what=..., log=...)` awaits `work()`, then sleeps `every_seconds`, until the
task running it is cancelled (the service's shutdown). A round that raises is logged with its traceback and
the next round runs as planned: one bad round (the database down, a neighbour's odd answer) must not stop the
work for the rest of the process's life. Cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def repeat(
    work: Callable[[], Awaitable[object]], *, every_seconds: float, what: str, log: logging.Logger
) -> None:
    """Run `work` every `every_seconds` seconds (the pause between rounds) until cancelled.

    A round's exception is logged as "`what` failed" (log.exception) and does not end the loop;
    `asyncio.CancelledError` ends it.
    """
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(every_seconds)
