"""services.kit.background.repeat: the loop behind order's checkout settler and shipment tracker."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from services.kit.background import repeat

log = logging.getLogger("test.background")


async def test_a_failing_round_is_logged_and_the_next_round_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[float] = []
    enough = asyncio.Event()

    async def work() -> None:
        rounds.append(time.monotonic())
        if len(rounds) == 3:
            enough.set()
        if len(rounds) == 1:
            raise RuntimeError("MongoDB is down")

    with caplog.at_level(logging.ERROR, logger="test.background"):
        task = asyncio.create_task(repeat(work, every_seconds=0.05, what="settling round", log=log))
        await asyncio.wait_for(enough.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (failure,) = caplog.records
    assert failure.getMessage() == "settling round failed"
    assert failure.exc_info and str(failure.exc_info[1]) == "MongoDB is down"  # with its traceback
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert all(gap >= 0.045 for gap in gaps), gaps  # the pause follows every round, failed ones too


async def test_cancelling_ends_the_loop_even_inside_a_round() -> None:
    started = asyncio.Event()

    async def slow_work() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(repeat(slow_work, every_seconds=3600, what="tracking round", log=log))
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert task.cancelled()
