"""Per-market sliding windows kept in memory by the stream consumer.

A `Series` holds one metric of one market, sorted by tick, with a running summary of exactly
the values it holds. A `Board` holds every market's series, trims them to the rank window
`(newest tick - rank_window, newest tick]`, and exports the figures the service serves.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from common.models import METRICS, Market, Metric, Point
from common.stats import RunningStats, Summary


class Series:
    __slots__ = ("_stats", "ticks", "values")

    def __init__(self) -> None:
        self.ticks: array[int] = array("q")
        self.values: array[float] = array("d")
        self._stats = RunningStats()

    def __len__(self) -> int:
        return len(self.ticks)

    def upsert(self, t: int, value: float) -> bool:
        """Insert or replace the value at tick `t`; False when nothing changed."""
        i = bisect_left(self.ticks, t)
        if i < len(self.ticks) and self.ticks[i] == t:
            old = self.values[i]
            if old == value:
                return False
            self._stats.remove(old)
            self.values[i] = value
        else:
            self.ticks.insert(i, t)
            self.values.insert(i, value)
        self._stats.add(value)
        return True

    def delete(self, t: int) -> bool:
        i = bisect_left(self.ticks, t)
        if i == len(self.ticks) or self.ticks[i] != t:
            return False
        self._stats.remove(self.values[i])
        del self.ticks[i]
        del self.values[i]
        return True

    def trim_through(self, horizon: int) -> int:
        """Drop every point with tick <= horizon; returns how many went."""
        cut = bisect_right(self.ticks, horizon)
        if cut:
            for value in self.values[:cut]:
                self._stats.remove(value)
            del self.ticks[:cut]
            del self.values[:cut]
        return cut

    def between(self, lo: int, hi: int) -> list[float]:
        """Values with lo <= tick < hi."""
        return list(self.values[bisect_left(self.ticks, lo) : bisect_left(self.ticks, hi)])

    def summary(self) -> Summary:
        if self._stats.needs_recentre():
            self._stats.recentre(self.values)
        return self._stats.summary()

    @property
    def last(self) -> tuple[int, float] | None:
        return (self.ticks[-1], self.values[-1]) if self.ticks else None

    def state(self) -> tuple[bytes, bytes, tuple[int, float, float, float, float, int]]:
        """Ticks, values and running sums, for a checkpoint (see `restored`)."""
        return self.ticks.tobytes(), self.values.tobytes(), self._stats.state()

    @classmethod
    def restored(
        cls, ticks: bytes, values: bytes, stats: tuple[int, float, float, float, float, int]
    ) -> Series:
        series = cls()
        series.ticks.frombytes(ticks)
        series.values.frombytes(values)
        series._stats = RunningStats.restored(stats)
        return series


@dataclass(frozen=True, slots=True)
class BoardRow:
    """What the service knows of one market: its latest point and its window figures."""

    market: Market
    t: int
    price: float
    volume: float | None
    stats: dict[Metric, Summary]


class Board:
    """Every market's series over the rank window, updated point by point."""

    def __init__(self, rank_window: int) -> None:
        self.rank_window = rank_window
        self.window_end = 0
        self.series: dict[Market, dict[Metric, Series]] = {}
        self._latest: dict[Market, Point] = {}

    def __contains__(self, market: Market) -> bool:
        return market in self.series

    def horizon(self) -> int:
        """Ticks at or before this are outside the rank window."""
        return self.window_end - self.rank_window

    def apply(self, point: Point) -> bool:
        """Add or replace a point; False when it changed nothing the board shows."""
        if point.t <= self.horizon():
            return False
        per_metric = self.series.setdefault(point.market, {m: Series() for m in METRICS})
        changed = False
        for metric in METRICS:
            value = point.value(metric)
            if value is not None:
                changed |= per_metric[metric].upsert(point.t, value)
            else:
                changed |= per_metric[metric].delete(point.t)
        latest = self._latest.get(point.market)
        if latest is None or point.t >= latest.t:
            self._latest[point.market] = point
            changed = True
        if point.t > self.window_end:
            self.window_end = point.t
            self._trim()
        return changed

    def remove(self, market: Market, t: int) -> None:
        for series in self.series.get(market, {}).values():
            series.delete(t)

    def load(self, points: Iterable[Point]) -> None:
        for point in points:
            self.apply(point)

    def _trim(self) -> None:
        horizon = self.horizon()
        for market, per_metric in list(self.series.items()):
            for series in per_metric.values():
                series.trim_through(horizon)
            if not len(per_metric["price"]) and not len(per_metric["volume"]):
                del self.series[market]
                self._latest.pop(market, None)

    def latest(self, market: Market) -> Point | None:
        return self._latest.get(market)

    def clear(self) -> None:
        self.series.clear()
        self._latest.clear()
        self.window_end = 0

    def restore(self, market: Market, series: dict[Metric, Series], latest: Point) -> None:
        """Put back one market as a checkpoint held it (alerter/checkpoint.py)."""
        self.series[market] = series
        self._latest[market] = latest
        self.window_end = max(self.window_end, latest.t)

    def rows(self) -> list[BoardRow]:
        return [
            BoardRow(
                market=market,
                t=latest.t,
                price=latest.price,
                volume=latest.volume,
                stats={m: self.series[market][m].summary() for m in METRICS},
            )
            for market, latest in sorted(self._latest.items())
        ]
