"""`tracker backfill`: missing ticks of Bitfinex markets refilled from 1-minute candles.

A candle with time MTS covers [MTS, MTS + 60 s) and is known when it ends. So the point of
tick t is what the ticker would have said at t:
    price  = CLOSE of the last candle that ended at or before t (a quiet minute has no candle:
             the price carries over, as the ticker's LAST_PRICE does);
    volume = the sum of VOLUME over the candles that ended in (t − 24 h, t] (the ticker's
             24h volume).
Candles are one minute apart, so only ticks on whole minutes can be refilled. Points are
written through the same store as the fetcher's (same keys: a tick already stored is
overwritten, never duplicated), so the table's stream brings them to the rank statistics
like any other write. By default only ticks with no stored point are written.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tqdm import tqdm

from common.db import Store
from common.models import Market, Point
from common.retry import Backoff
from common.settings import Settings
from common.ticks import tick_floor
from fetcher.errors import SourceError, UnknownShape
from fetcher.http import get_json
from fetcher.sources.base import number

log = logging.getLogger(__name__)

CANDLE = 60  # seconds covered by one candle
DAY = 86_400  # the span of the ticker's VOLUME
PAGE = 10_000  # Bitfinex's largest `limit`
EXCHANGE = "bitfinex"


@dataclass(frozen=True)
class Candle:
    start: int  # epoch seconds (Bitfinex's MTS / 1000)
    close: float
    volume: float


def parse_candles(payload: Any) -> list[Candle]:
    """[[MTS, OPEN, CLOSE, HIGH, LOW, VOLUME], ...] → candles; malformed rows are dropped."""
    candles: list[Candle] = []
    for row in payload if isinstance(payload, list) else []:
        if not isinstance(row, list) or len(row) < 6:
            continue
        mts, close, volume = number(row[0]), number(row[2]), number(row[5])
        if mts is None or close is None or close <= 0 or volume is None or volume < 0:
            continue
        candles.append(Candle(int(mts // 1000), close, volume))
    return candles


def refillable_ticks(start: float, end: float, interval: int) -> list[int]:
    """The ticks in (start, end] that candles can fill: multiples of the interval on a minute."""
    step = math.lcm(interval, CANDLE)
    first = tick_floor(start, step) + step
    return list(range(first, tick_floor(end, step) + 1, step))


def points_from_candles(
    market: Market, candles: Sequence[Candle], ticks: Iterable[int]
) -> list[Point]:
    """The point of each tick (see the module doc); ticks before the first candle get none."""
    ordered = sorted(candles, key=lambda c: c.start)
    ends = [c.start + CANDLE for c in ordered]
    volumes = [0.0, *itertools.accumulate(c.volume for c in ordered)]
    points: list[Point] = []
    for t in ticks:
        upto = bisect.bisect_right(ends, t)  # candles that ended at or before t
        if upto == 0:
            continue
        since = bisect.bisect_right(ends, t - DAY)  # ...and not more than a day before
        points.append(Point(market, t, ordered[upto - 1].close, volumes[upto] - volumes[since]))
    return points


def parse_since(text: str) -> int:
    """`24h`, `90m`, `2d`, `3600s` or plain seconds → seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"not a duration: {text!r} (try 24h, 90m, 2d)")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


class Pacer:
    """At most `per_minute` requests a minute, spaced evenly (Bitfinex: ~30 for candles)."""

    def __init__(self, per_minute: float) -> None:
        self.gap = 60.0 / per_minute
        self.next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        delay = self.next - now
        self.next = max(now, self.next) + self.gap
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Summary:
    markets: int = 0
    missing: int = 0  # ticks without a point before the backfill
    written: int = 0
    failed: list[str] = field(default_factory=list)


class Backfill:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: aiohttp.ClientSession,
        per_minute: float = 30.0,
        only_gaps: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.pacer = Pacer(per_minute)
        self.only_gaps = only_gaps
        self.base_url = settings.bitfinex_url.rstrip("/")

    async def candles(self, market: Market, start: int, end: int) -> list[Candle]:
        """Every candle with start <= MTS <= end, page by page, paced and retried."""
        key = "t" + market.symbol.upper()
        found: list[Candle] = []
        while start <= end:
            await self.pacer.wait()
            url = (
                f"{self.base_url}/v2/candles/trade:1m:{key}/hist"
                f"?start={start * 1000}&end={end * 1000}&limit={PAGE}&sort=1"
            )
            # An error answer (maintenance, "limit: invalid") raises here: a failed market,
            # never "no trades". A rate-limited IP is blocked for about a minute: wait it out.
            page = await get_json(
                self.http,
                url,
                time.monotonic() + 300,
                self.settings.fetch_timeout,
                Backoff(base=2, cap=65),
                source=EXCHANGE,
            )
            if not isinstance(page, list):
                raise UnknownShape(f"{url}: expected a list of candles", page)
            rows = parse_candles(page)
            if len(rows) < len(page):
                log.warning("%s: %d malformed candle row(s) skipped", url, len(page) - len(rows))
            found += rows
            if len(page) < PAGE or not rows:
                break
            start = rows[-1].start + CANDLE
        return found

    async def market(self, market: Market, start: float, end: float) -> tuple[int, int]:
        """Refill one market's ticks in (start, end]: (ticks missing, points written)."""
        ticks = refillable_ticks(start, end, self.settings.fetch_interval)
        if self.only_gaps and ticks:
            stored = await self.store.query_series(market, ticks[0] - 1, ticks[-1], "price")
            have = {t for t, _ in stored}
            ticks = [t for t in ticks if t not in have]
        if not ticks:
            return 0, 0
        candles = await self.candles(market, ticks[0] - DAY, ticks[-1] - CANDLE)
        points = points_from_candles(market, candles, ticks)
        await self.store.put_points(points)
        return len(ticks), len(points)

    async def run(self, markets: Sequence[Market], start: float, end: float) -> Summary:
        """Refill every market in turn; one that fails is reported and the rest go on."""
        summary = Summary()
        bar = tqdm(markets, desc="backfill", unit="market", disable=None, leave=False)
        for market in bar:
            try:
                missing, written = await self.market(market, start, end)
            except SourceError as exc:
                log.error("backfill %s: not refilled: %s", market.key, exc)
                summary.failed.append(market.key)
                continue
            summary.markets += 1
            summary.missing += missing
            summary.written += written
            bar.set_postfix(written=summary.written)
            log.info(
                "backfill %s: %d tick(s) missing, %d point(s) written", market.key, missing, written
            )
        bar.close()
        return summary


def markets_of(symbols: Iterable[str]) -> list[Market]:
    return [Market(EXCHANGE, s.strip().lower()) for s in symbols if s.strip()]
