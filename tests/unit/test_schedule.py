"""The tick generator against a fake clock: aligned, never twice, late ticks counted as missed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fetcher.schedule import ticks


class Clock:
    """Wall time that advances only when the code under test sleeps (or work is simulated)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def collect(clock: Clock, interval: int, work: list[float], n: int) -> list[tuple[int, int]]:
    stop = asyncio.Event()
    out: list[tuple[int, int]] = []
    real_wait_for = asyncio.wait_for

    async def fake_wait_for(aw: Coroutine[Any, Any, Any], timeout: float) -> None:
        aw.close()
        clock.now += timeout
        raise TimeoutError

    asyncio.wait_for = fake_wait_for  # type: ignore[assignment]
    try:
        async for tick in ticks(interval, stop, clock):
            out.append((tick.t, tick.missed))
            clock.now += work[len(out) - 1] if len(out) - 1 < len(work) else 0.01
            if len(out) == n:
                break
    finally:
        asyncio.wait_for = real_wait_for
    return out


async def test_ticks_are_aligned_and_drift_free() -> None:
    """Work of varying length never shifts the schedule off the interval's multiples."""
    got = await collect(Clock(1000.2), 10, [3.0, 0.1, 7.5, 0.0], 5)
    assert got == [(1000, 0), (1010, 0), (1020, 0), (1030, 0), (1040, 0)]


async def test_overrun_skips_and_counts_ticks_instead_of_running_them_late() -> None:
    """Work that overruns two boundaries: those ticks are missed and counted, never run."""
    got = await collect(Clock(1000.0), 10, [26.0, 0.0], 2)
    assert got == [(1000, 0), (1030, 2)]


async def test_start_late_in_the_interval_waits_for_the_next_tick() -> None:
    """Starting 8 s into a 10 s interval does not mislabel a price with the passed tick."""
    got = await collect(Clock(1008.0), 10, [], 1)
    assert got == [(1010, 0)]
