"""The drift-free tick generator: sleep to the next wall-clock boundary, whatever the work took."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from common.lifecycle import sleep_unless
from common.ticks import next_tick, tick_floor

log = logging.getLogger(__name__)

# A tick that cannot start within this fraction of the interval is missed, not run late.
LATE_FRACTION = 0.5


@dataclass(frozen=True)
class Tick:
    t: int  # the scheduled time: a multiple of the interval
    late: float  # seconds between the schedule and the actual start
    missed: int  # ticks skipped since the previous one because they could not start in time


async def ticks(
    interval: int,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Tick]:
    """Yield each scheduled tick once, at its time; never a tick twice, never a stale one."""
    last: int | None = None  # the newest tick yielded or passed over
    skipped = 0  # ticks passed over since the last one yielded
    while not stop.is_set():
        now = clock()
        current = tick_floor(now, interval)
        if last is None or current > last:
            late = now - current
            if last is not None:
                skipped += (current - last) // interval - 1  # boundaries slept through
            first = last is None
            last = current
            if late > interval * LATE_FRACTION:
                # Labelling a price fetched this late with this tick would misdate it.
                if not first:
                    skipped += 1
                    log.warning(
                        "tick %d could not start in time (%.1f s late); counted as missed",
                        current,
                        late,
                    )
                continue
            if skipped:
                log.warning("%d tick(s) before %d were missed", skipped, current)
            yield Tick(current, late, skipped)
            skipped = 0
            continue
        # Sleep to the boundary; wake early if asked to stop.
        await sleep_unless(stop, next_tick(now, interval) - clock())
