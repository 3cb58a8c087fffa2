"""Per-market sliding windows kept in memory by the stream consumer.

A `Board` holds every market's figures over the rank window `(window_end - rank_window,
window_end]`, where `window_end` is the newest tick seen. Each metric of each market is a
`Series`: exact sums (`ExactSums`) over every point in the window, and the values of only its
newest points, the *held* ones (`t > seal_line`, the alert window and one tick more: what the
alert rule reads). Older points are *sealed*: in the sums, not in memory. So memory per market
does not grow with the rank window or the tick rate.

A sealed point leaving the window must come out of the sums, and its value is no longer here:
its tick goes to `pending`, the consumer reads those points back from the table (BatchGetItem)
and hands them to `take_out`. Ticks are on the fetch interval's grid, so the ticks to read back
are known without keeping them; a sealed tick off the grid (a point written by hand, a backfill
on another grid) is kept in `odd` instead.

A change to a sealed point (a late write, an overwrite, a delete) has no old value here to
replace: the market goes to `stale`, and the consumer re-reads its window from the table
(`replace`). Every change is thus idempotent, as an upsert of a held point is: a record
delivered twice, or read back after the table already showed it, ends in the same figures.
Figures are published only when nothing is pending or stale (`settled`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common.models import METRICS, Market, Metric, Point
from common.stats import ExactSums, Summary


class Series:
    __slots__ = ("_summary", "sums", "ticks", "values")

    def __init__(self) -> None:
        self.ticks: array[int] = array("q")  # the held points only
        self.values: array[float] = array("d")
        self.sums = ExactSums()  # every point in the window, held or sealed
        self._summary: Summary | None = None

    def __len__(self) -> int:
        """Points held in memory (the window may count more: `count`)."""
        return len(self.ticks)

    @property
    def count(self) -> int:
        return self.sums.n

    @property
    def sealed(self) -> int:
        """Points in the sums whose values are not held."""
        return self.sums.n - len(self.ticks)

    @classmethod
    def of(cls, points: Iterable[tuple[int, float]], seal_line: int) -> Series:
        """A series of (tick, value) pairs sorted by tick, holding those after `seal_line`."""
        series = cls()
        for t, value in points:
            series.sums.add(value)
            if t > seal_line:
                series.ticks.append(t)
                series.values.append(value)
        return series

    def upsert(self, t: int, value: float) -> bool:
        """Insert or replace the held value at tick `t`; False when nothing changed."""
        i = bisect_left(self.ticks, t)
        if i < len(self.ticks) and self.ticks[i] == t:
            old = self.values[i]
            if old == value:
                return False
            self.sums.remove(old)
            self.values[i] = value
        else:
            self.ticks.insert(i, t)
            self.values.insert(i, value)
        self.sums.add(value)
        self._summary = None
        return True

    def delete(self, t: int) -> bool:
        i = bisect_left(self.ticks, t)
        if i == len(self.ticks) or self.ticks[i] != t:
            return False
        self.sums.remove(self.values[i])
        del self.ticks[i]
        del self.values[i]
        self._summary = None
        return True

    def trim_through(self, horizon: int) -> int:
        """Drop every held point with tick <= horizon from memory and sums; how many went."""
        cut = bisect_right(self.ticks, horizon)
        if cut:
            for value in self.values[:cut]:
                self.sums.remove(value)
            del self.ticks[:cut]
            del self.values[:cut]
            self._summary = None
        return cut

    def seal_through(self, line: int) -> array[int]:
        """Forget the values of held points with tick <= line (they stay in the sums)."""
        cut = bisect_right(self.ticks, line)
        sealed = self.ticks[:cut]
        if cut:
            del self.ticks[:cut]
            del self.values[:cut]
        return sealed

    def take_out(self, value: float) -> None:
        """A sealed point read back as it left the window."""
        self.sums.remove(value)
        self._summary = None

    def unseal_all_gone(self) -> None:
        """Every sealed point has left the window: the sums are the held values' again."""
        self.sums = ExactSums.of(self.values)
        self._summary = None

    def between(self, lo: int, hi: int) -> list[float]:
        """Held values with lo <= tick < hi."""
        return list(self.values[bisect_left(self.ticks, lo) : bisect_left(self.ticks, hi)])

    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = self.sums.summary()
        return self._summary

    @property
    def last(self) -> tuple[int, float] | None:
        return (self.ticks[-1], self.values[-1]) if self.ticks else None

    def state(self) -> tuple[bytes, bytes, tuple[int, int, int, int]]:
        """Held ticks, held values and the sums, for a checkpoint (see `restored`)."""
        return self.ticks.tobytes(), self.values.tobytes(), self.sums.state()

    @classmethod
    def restored(cls, ticks: bytes, values: bytes, sums: Sequence[int]) -> Series:
        series = cls()
        series.ticks.frombytes(ticks)
        series.values.frombytes(values)
        series.sums = ExactSums.restored(sums)
        return series


@dataclass(frozen=True, slots=True)
class BoardRow:
    """What the service knows of one market: its latest point and its window figures."""

    market: Market
    t: int
    price: float
    volume: float | None
    stats: dict[Metric, Summary]


BATCH_KEYS = 100  # keys in one BatchGetItem: fewer to read back never warrant a re-read


def _by_market(item: tuple[Market, Point]) -> tuple[str, str]:
    return item[0].exchange, item[0].symbol


def grid_ticks(lo: int, hi: int, grid: int) -> range:
    """Multiples of `grid` with lo < t <= hi."""
    return range((lo // grid + 1) * grid, hi + 1, grid)


class Board:
    """Every market's series over the rank window, updated point by point.

    `hold`: seconds of newest points whose values are kept (None: the whole window, so nothing
    is ever sealed, pending or stale); `grid`: the tick interval (sealed ticks off it are kept).
    """

    def __init__(self, rank_window: int, hold: int | None = None, grid: int = 1) -> None:
        self.rank_window = rank_window
        self.hold = rank_window if hold is None else min(hold, rank_window)
        self.grid = grid
        self.window_end = 0
        self.series: dict[Market, dict[Metric, Series]] = {}
        self._latest: dict[Market, Point] = {}
        self.odd: dict[Market, list[int]] = {}  # sealed ticks off the grid
        self.pending: dict[Market, list[int]] = {}  # sealed ticks gone, values to take out
        self.stale: set[Market] = set()  # a sealed point changed: re-read from the table
        self.watching: set[Market] = set()  # being re-read: a change meanwhile goes to touched
        self.touched: set[Market] = set()

    @classmethod
    def holding_alert_window(cls, rank_window: int, alert_window: int, interval: int) -> Board:
        """The consumer's board: values held for the alert window and one tick more."""
        return cls(rank_window, alert_window + interval, interval)

    def __contains__(self, market: Market) -> bool:
        return market in self.series

    def horizon(self) -> int:
        """Ticks at or before this are outside the rank window."""
        return self.window_end - self.rank_window

    def seal_line(self) -> int:
        """Ticks at or before this are not held (their values are in the table only)."""
        return self.window_end - self.hold

    @property
    def settled(self) -> bool:
        """The figures are those of the stored points: nothing to take out or re-read."""
        return not self.pending and not self.stale

    def _changed_sealed(self, market: Market, t: int) -> None:
        """A change at or before the seal line: its old value is unknown here. Within two
        windows it may be a point the sums hold, or one read back before this change reached
        us, so the market is re-read; older, it is a TTL deletion and changes nothing."""
        if self.hold < self.rank_window and t > self.window_end - 2 * self.rank_window:
            self.stale.add(market)

    def apply(self, point: Point) -> bool:
        """Add or replace a point; False when it changed nothing the board shows."""
        market = point.market
        if self.watching and market in self.watching:
            self.touched.add(market)
        if point.t <= self.seal_line():
            self._changed_sealed(market, point.t)
            latest = self._latest.get(market)
            if latest is not None and latest.t <= point.t > self.horizon():
                self._latest[market] = point  # a market quiet since (delisted): its last point
            return market in self.stale
        per_metric = self.series.setdefault(market, {m: Series() for m in METRICS})
        changed = False
        for metric in METRICS:
            value = point.value(metric)
            if value is not None:
                changed |= per_metric[metric].upsert(point.t, value)
            else:
                changed |= per_metric[metric].delete(point.t)
        latest = self._latest.get(market)
        if latest is None or point.t >= latest.t:
            self._latest[market] = point
            changed = True
        if point.t > self.window_end:
            self._advance(point.t)
        return changed

    def remove(self, market: Market, t: int) -> None:
        if self.watching and market in self.watching:
            self.touched.add(market)
        if t <= self.seal_line():
            self._changed_sealed(market, t)
            return
        per_metric = self.series.get(market)
        if per_metric is None:
            return
        for series in per_metric.values():
            series.delete(t)
        if not any(s.count for s in per_metric.values()):
            self._drop(market)
            return
        latest = self._latest.get(market)
        if latest is not None and latest.t == t:  # the newest point went: the one before it
            price, volume = per_metric["price"], per_metric["volume"]
            if price.last is None:
                self._changed_sealed(market, t)
                return
            before, value = price.last
            i = bisect_left(volume.ticks, before)
            held = i < len(volume.ticks) and volume.ticks[i] == before
            self._latest[market] = Point(market, before, value, volume.values[i] if held else None)

    def replace(self, market: Market, points: Sequence[Point]) -> None:
        """Install a market as the table holds it (points oldest first): a first load, or the
        re-read of a stale market."""
        if points and points[-1].t > self.window_end:
            self._advance(points[-1].t)
        horizon, line = self.horizon(), self.seal_line()
        kept = [p for p in points if p.t > horizon]
        self.pending.pop(market, None)
        self.stale.discard(market)
        self.odd.pop(market, None)
        if not kept:
            self._drop(market)
            return
        self.series[market] = {
            m: Series.of(((p.t, v) for p in kept if (v := p.value(m)) is not None), line)
            for m in METRICS
        }
        odd = [p.t for p in kept if p.t <= line and p.t % self.grid]
        if odd:
            self.odd[market] = odd
        self._latest[market] = kept[-1]

    def merge(self, points: Iterable[Point]) -> None:
        """Apply stored points one by one (upserts: changes to sealed points make it stale)."""
        for point in points:
            self.apply(point)

    def load(self, points: Iterable[Point]) -> None:
        """Install stored points of any markets, in any order (the last given of a tick wins)."""
        by_market: dict[Market, dict[int, Point]] = {}
        for point in points:
            by_market.setdefault(point.market, {})[point.t] = point
        for market, own in by_market.items():
            self.replace(market, [own[t] for t in sorted(own)])

    def _advance(self, end: int) -> None:
        old_horizon, old_line = self.horizon(), self.seal_line()
        self.window_end = end
        horizon, line = self.horizon(), self.seal_line()
        for market, per_metric in list(self.series.items()):
            sealed = any(s.sealed for s in per_metric.values())
            for series in per_metric.values():
                series.trim_through(horizon)
            if sealed:
                if horizon >= old_line:  # every sealed point has left
                    for series in per_metric.values():
                        series.unseal_all_gone()
                    self.odd.pop(market, None)
                    self.pending.pop(market, None)
                else:
                    self._leaving(market, old_horizon, horizon)
            gone: set[int] = set()
            for series in per_metric.values():
                gone.update(series.seal_through(line))
            off_grid = [t for t in gone if t % self.grid]
            if off_grid:
                for t in off_grid:
                    insort(self.odd.setdefault(market, []), t)
            if not any(s.count for s in per_metric.values()):
                self._drop(market)

    def _leaving(self, market: Market, lo: int, hi: int) -> None:
        """Sealed ticks in (lo, hi] leave the window: queue them to be read back, or, when
        that makes more keys than a re-read of the window would bring points (a jump after a
        gap, read-backs held up by a long replay), re-read the market instead."""
        grid = grid_ticks(lo, hi, self.grid)
        waiting = len(self.pending.get(market, ()))
        if waiting + len(grid) > max(BATCH_KEYS, *(s.sealed for s in self.series[market].values())):
            self.pending.pop(market, None)
            self.stale.add(market)
            return
        ticks = self._sealed_in(market, lo, hi)
        odd = self.odd.get(market)
        if odd:
            del odd[: bisect_right(odd, hi)]
            if not odd:
                del self.odd[market]
        if ticks:
            self.pending.setdefault(market, []).extend(ticks)

    def _sealed_in(self, market: Market, lo: int, hi: int) -> list[int]:
        """The market's sealed ticks in (lo, hi]: those on the grid, then its odd ones."""
        ticks = list(grid_ticks(lo, hi, self.grid))
        odd = self.odd.get(market)
        if odd:
            ticks += [t for t in odd[: bisect_right(odd, hi)] if t > lo]
        return ticks

    def leaving_next(self) -> dict[Market, list[int]]:
        """The sealed ticks of each market that the next tick on the grid takes out of the
        window: what `pending` will ask for then, to be read ahead of it."""
        lo = self.horizon()
        hi = lo + self.grid
        out: dict[Market, list[int]] = {}
        for market, per_metric in self.series.items():
            if any(s.sealed for s in per_metric.values()):
                ticks = self._sealed_in(market, lo, hi)
                if ticks:
                    out[market] = ticks
        return out

    def take_out(
        self, asked: dict[Market, list[int]], found: dict[tuple[Market, int], Point]
    ) -> int:
        """Subtract the points read back for the pending ticks `asked` (those still pending:
        a market re-read meanwhile has none); how many points came out."""
        out = 0
        for market, ticks in asked.items():
            waiting = self.pending.get(market)
            if not waiting:
                continue
            per_metric = self.series.get(market)
            done = set(ticks).intersection(waiting)
            for t in done:
                point = found.get((market, t))
                if point is None or per_metric is None:
                    continue
                for metric in METRICS:
                    value = point.value(metric)
                    if value is None:
                        continue
                    if per_metric[metric].sealed <= 0:  # the sums never had it: re-read
                        self.stale.add(market)
                    else:
                        per_metric[metric].take_out(value)
                out += 1
            left = [t for t in waiting if t not in done]
            if left:
                self.pending[market] = left
            else:
                del self.pending[market]
            if per_metric is not None and not any(s.count for s in per_metric.values()):
                self._drop(market)
        return out

    def _drop(self, market: Market) -> None:
        self.series.pop(market, None)
        self._latest.pop(market, None)
        self.odd.pop(market, None)
        self.pending.pop(market, None)

    def latest(self, market: Market) -> Point | None:
        return self._latest.get(market)

    def clear(self) -> None:
        self.series.clear()
        self._latest.clear()
        self.odd.clear()
        self.pending.clear()
        self.stale.clear()
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
            # by (exchange, symbol), as Market orders, without its generated __lt__ per pair
            for market, latest in sorted(self._latest.items(), key=_by_market)
        ]
