"""Backfill's definition read plainly: the price and 24h volume at a tick, from candles."""

from __future__ import annotations

from fetcher.backfill import Candle


def naive(candles: list[Candle], t: int) -> tuple[float, float] | None:
    """Price and 24h volume at tick t, straight from the definition."""
    ended = [c for c in candles if c.start + 60 <= t]
    if not ended:
        return None
    last = max(ended, key=lambda c: c.start)
    return last.close, sum(c.volume for c in ended if c.start + 60 > t - 86400)
