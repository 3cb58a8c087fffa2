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
from collections.abc import Awaitable, Callable, Sequence

from common.conditions import Window
from common.models import METRICS, Market, Metric
from common.stats import ExactTotal

CHUNK = 1800  # seconds of a window's oldest values held (read at once when they run out)
Reader = Callable[[Market, Metric, int, int], Awaitable[Sequence[tuple[int, float]]]]


class Span(ExactTotal):
    """One window width over one market's metric, as it slides forward point by point: the
    exact count and sum of the values in it (an `ExactTotal` itself, not holding one: the
    alerter keeps a span per window of every market with rules), and its oldest values.

    What else it knows is in one array of floats (ticks are whole seconds, exact in a float):
    `[read_to, top, t0, v0, t1, v1, …]`: every value before `read_to` is held (the held ones
    as (tick, value) pairs, oldest first), `top` is the newest tick in the sums. One array, not
    a field and an object for each: 20,000 markets with rules hold some 50,000 spans."""

    __slots__ = ("held", "width")

    def __init__(self, width: int, t: int, points: Sequence[tuple[int, float]]) -> None:
        """The window at t, from every (tick, value) with t − width ≤ tick < t, oldest first."""
        super().__init__()
        for _, v in points:
            self.add(v)
        self.width = width
        # every value before this is held: the first chunk from the oldest
        read_to = min(t, points[0][0] + CHUNK) if points else t
        top = points[-1][0] if points else t - width - 1  # the newest tick in the sums
        held = [float(read_to), float(top)]
        for tick, v in points:
            if tick >= read_to:
                break
            held += (tick, v)
        self.held = array("d", held)

    @property
    def read_to(self) -> int:
        return int(self.held[0])

    def slide(self, t: int, head: tuple[int, float] | None, stride: int = CHUNK) -> Gap | None:
        """Move the window to end before t: the newest point judged (`head`, not yet inside)
        enters, the values before t − w leave. Returns the ticks [lo, hi) to read (`fill`),
        `stride` seconds from the window's start, when the held oldest values ran out while
        the sums still count values the span does not hold; else None."""
        held = self.held
        if head is not None and held[1] < head[0] < t:  # judged before t, not inside yet
            tick, v = head
            self.add(v)
            # Everything in the sums is held, within a chunk: so is the newest (a window
            # shorter than a chunk is then held whole, and never read again).
            if held[0] > held[1] and (len(held) == 2 or tick < held[2] + CHUNK):
                held += array("d", (tick, v))
                held[0] = tick + 1
            held[1] = tick
        lo = t - self.width
        end = 2
        while end < len(held) and held[end] < lo:
            self.remove(held[end + 1])
            end += 2
        if end > 2:
            del held[2:end]
        if len(held) > 2 or not self.n or held[0] >= t:
            return None
        start = int(held[0])
        return start, min(t, max(lo, start) + stride)

    def fill(self, points: Sequence[tuple[int, float]], hi: int) -> None:
        """The values read for [read_to, hi), oldest first."""
        for pair in points:
            self.held += array("d", pair)
        self.held[0] = hi

    def window(self) -> Window:
        return Window.summed(self, self.held[3] if len(self.held) > 2 else None)


Gap = tuple[int, int]


class Spans:
    """Every span in use, by (market, metric), each of its own width (a few per market: a
    tuple, not a dict), and the newest point of each (market, metric) judged, which enters
    its spans at the next point; `read` gives the stored values of a market's metric with
    lo ≤ tick < hi."""

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.spans: dict[tuple[Market, Metric], tuple[Span, ...]] = {}
        # The newest point seen: it enters the spans at the next point (a window ends before
        # the point it is judged at). Kept when the spans are dropped: what is behind it still is.
        self.heads: dict[tuple[Market, Metric], tuple[int, float]] = {}

    async def windows(
        self, market: Market, metric: Metric, t: int, v: float, widths: Sequence[int]
    ) -> dict[int, Window]:
        """The windows of these widths at the point (t, v), which then enters each span."""
        key = (market, metric)
        head = self.heads.get(key)
        if head is not None and t < head[0]:  # behind: read whole, nothing kept
            self.spans.pop(key, None)
            return {
                w: Window.of([x for _, x in await self.read(market, metric, t - w, t)])
                for w in widths
            }
        held = self.spans.get(key)
        if held is not None and head is not None and t == head[0] and v != head[1]:
            held = None  # the newest point overwritten: its old value is in the sums
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
                while (gap := span.slide(t, head, stride)) is not None:
                    points = await self.read(market, metric, *gap)
                    span.fill(points, gap[1])
                    stride = stride if points else 2 * stride  # across a gap: faster
            spans.append(span)
            out[width] = span.window()
        self.spans[key] = tuple(spans)
        self.heads[key] = (t, v)
        return out

    def removed(self, market: Market, t: int) -> None:
        """A point at t was deleted: forget the market if a span may count it."""
        for metric in METRICS:
            head = self.heads.get((market, metric))
            for span in self.spans.get((market, metric), ()):
                newest = head[0] if head is not None else span.read_to
                if t >= newest - span.width:
                    self.forget(market)
                    return

    def forget(self, market: Market) -> None:
        """The market's spans are no longer exact (a deletion, a read again)."""
        for metric in METRICS:  # the newest tick seen stays: what is behind it still is
            self.spans.pop((market, metric), None)
