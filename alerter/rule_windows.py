"""The windows users' rules look at, kept as running sums while they slide.

A windowed condition at a point t reads the market's values with t − w ≤ time < t: how many,
their sum, the oldest. For each (market, metric, w) some rule names, a `Span` keeps exact
running sums of those values (`ExactTotal`), the window's oldest values (a chunk of `CHUNK`
seconds, read ahead), and the newest point, judged but not yet inside (a window ends before
the point it is judged at). Each new point enters, the values older than t − w leave; only
when the held oldest values run out is the next chunk read (from the board while it holds
them, else one Query). So a point costs a few additions, and a window about one read every
`CHUNK` seconds, whatever its length; memory per span is the chunk, not the window.

A span is exact only for points that come in time order through the stream. Anything else
drops the market's spans, and its next point builds them again from one read of each window:
an overwrite of the newest point; a point older than the newest seen (a late write, a single
record delivered again: its own windows are read whole, not kept, as the points after it will
not come again); a deleted point; a market read again after another replica had it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence

from common.conditions import Window
from common.models import METRICS, Market, Metric
from common.stats import ExactTotal

CHUNK = 1800  # seconds of a window's oldest values held (read at once when they run out)
Reader = Callable[[Market, Metric, int, int], Awaitable[Sequence[tuple[int, float]]]]


class Span(ExactTotal):
    """One window width over one market's metric, as it slides forward point by point: the
    exact count and sum of the values in it (an `ExactTotal` itself, not holding one: the
    alerter keeps a span per window of every market with rules), and its oldest values."""

    __slots__ = ("head_t", "head_v", "read_to", "ticks", "top", "values", "width")

    def __init__(self, width: int, t: int, points: Sequence[tuple[int, float]]) -> None:
        """The window at t, from every (tick, value) with t − width ≤ tick < t, oldest first."""
        super().__init__()
        for _, v in points:
            self.add(v)
        self.width = width
        # every value before this is held: the first chunk from the oldest
        self.read_to = min(t, points[0][0] + CHUNK) if points else t
        cut = bisect_left([tick for tick, _ in points], self.read_to)
        self.ticks = array("q", (tick for tick, _ in points[:cut]))
        self.values = array("d", (v for _, v in points[:cut]))
        self.top = points[-1][0] if points else t - width - 1  # the newest tick in the sums
        # The point judged, not yet inside (two fields, not a tuple: one span per window held).
        self.head_t: int | None = None
        self.head_v = 0.0

    def follows(self, t: int, v: float) -> bool:
        """Whether a point at t can slide this span: after its newest point (or that same
        point again, unchanged)."""
        head = self.head_t
        return head is None or t > head or (t == head and v == self.head_v)

    def slide(self, t: int, stride: int = CHUNK) -> tuple[int, int] | None:
        """Move the window to end before t: the newest point enters, the values before t − w
        leave. Returns the ticks [lo, hi) to read (`fill`), `stride` seconds from the window's
        start, when the held oldest values ran out while the sums still count values the span
        does not hold; else None."""
        head = self.head_t
        if head is not None and head < t:
            self.add(self.head_v)
            # Everything in the sums is held, within a chunk: so is the newest (a window
            # shorter than a chunk is then held whole, and never read again).
            if self.read_to > self.top and (not self.ticks or head < self.ticks[0] + CHUNK):
                self.ticks.append(head)
                self.values.append(self.head_v)
                self.read_to = head + 1
            self.top = head
            self.head_t = None
        lo = t - self.width
        cut = bisect_left(self.ticks, lo)
        if cut:
            for value in self.values[:cut]:
                self.remove(value)
            del self.ticks[:cut]
            del self.values[:cut]
        if self.ticks or not self.n or self.read_to >= t:
            return None
        start = self.read_to
        return start, min(t, max(lo, start) + stride)

    def fill(self, points: Sequence[tuple[int, float]], hi: int) -> None:
        """The values read for [read_to, hi), oldest first."""
        for tick, v in points:
            self.ticks.append(tick)
            self.values.append(v)
        self.read_to = hi

    def window(self) -> Window:
        return Window.summed(self, self.values[0] if self.values else None)

    def hold(self, t: int, v: float) -> None:
        """The point just judged: it enters at the next point."""
        self.head_t, self.head_v = t, v


class Spans:
    """Every span in use, by (market, metric), each of its own width (a few per market: a
    tuple, not a dict); `read` gives the stored values of a market's metric with
    lo ≤ tick < hi."""

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.spans: dict[tuple[Market, Metric], tuple[Span, ...]] = {}
        self.newest: dict[tuple[Market, Metric], int] = {}  # the newest point's tick seen

    async def windows(
        self, market: Market, metric: Metric, t: int, v: float, widths: Sequence[int]
    ) -> dict[int, Window]:
        """The windows of these widths at the point (t, v), which then enters each span."""
        key = (market, metric)
        newest = self.newest.get(key)
        if newest is not None and t < newest:  # behind: read whole, nothing kept
            self.spans.pop(key, None)
            return {
                w: Window.of([x for _, x in await self.read(market, metric, t - w, t)])
                for w in widths
            }
        self.newest[key] = t
        held = self.spans.get(key)
        if held is not None and any(not span.follows(t, v) for span in held):
            held = None
        # The spans of the widths rules have now (no rule has the others' any more).
        kept = {span.width: span for span in held or () if span.width in widths}
        spans: list[Span] = []
        out: dict[int, Window] = {}
        for width in widths:
            span = kept.get(width)
            if span is None:
                points = await self.read(market, metric, t - width, t)
                span = Span(width, t, points)
            else:
                stride = CHUNK
                while (gap := span.slide(t, stride)) is not None:
                    points = await self.read(market, metric, *gap)
                    span.fill(points, gap[1])
                    stride = stride if points else 2 * stride  # across a gap: faster
            spans.append(span)
            out[width] = span.window()
            span.hold(t, v)
        self.spans[key] = tuple(spans)
        return out

    def removed(self, market: Market, t: int) -> None:
        """A point at t was deleted: forget the market if a span may count it."""
        for metric in METRICS:
            for span in self.spans.get((market, metric), ()):
                newest = span.head_t if span.head_t is not None else span.read_to
                if t >= newest - span.width:
                    self.forget(market)
                    return

    def forget(self, market: Market) -> None:
        """The market's spans are no longer exact (a deletion, a read again)."""
        for metric in METRICS:  # the newest tick seen stays: what is behind it still is
            self.spans.pop((market, metric), None)
