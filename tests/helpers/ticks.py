"""Ticks for tests that fetch one by hand."""

from __future__ import annotations

import asyncio
import time

from common.ticks import tick_floor


async def fresh_tick(interval: int) -> int:
    """The tick now, if at least half of it is left, else the next one, waited for: a fetch
    of it then never finds its tick's time already gone (the fetcher gives up then)."""
    t = tick_floor(time.time(), interval)
    if time.time() - t > interval / 2:
        t += interval
        await asyncio.sleep(max(0.0, t - time.time()))
    return t
