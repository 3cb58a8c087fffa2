"""The consumer over a board that holds only the alert window, against an in-memory table: a
replay of records the table already showed re-reads nothing; points behind the held values are
judged on windows read in spans, not one Query each; a change to a sealed point is re-read;
and once settled the figures are the stored points'."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any, cast

import pytest

from alerter.processor import CREATED_SLACK, Processor
from alerter.records import Change
from common.models import Alert, Market, Point
from common.settings import Settings
from common.window import Board

WINDOW, ALERT, STEP = 3600, 600, 60
MARKET = Market("bitfinex", "btcusd")


class Table:
    """The store calls the processor makes, over a dict; Queries counted."""

    def __init__(self) -> None:
        self.rows: dict[int, Point] = {}
        self.queries = 0
        self.reads: list[list[tuple[Market, int]]] = []  # BatchGetItem keys, call by call
        self.alerts: list[Alert] = []

    async def query_points(
        self, market: Market, start: float, end: float, consistent: bool = False
    ) -> list[Point]:
        self.queries += 1
        return [self.rows[t] for t in sorted(self.rows) if start < t <= end]

    async def get_points(self, keys: list[tuple[Market, int]]) -> dict[tuple[Market, int], Point]:
        self.reads.append(list(keys))
        return {(m, t): self.rows[t] for m, t in keys if t in self.rows}

    async def last_alert_time(self, market: Market) -> int | None:
        return None

    async def record(self, alert: Alert, fresh: bool) -> None:
        """The house outbox's part: the alert recorded (no deliveries here)."""
        self.alerts.append(alert)


def change(point: Point, created: float) -> Change:
    return Change(point.market, point.t, point, "1", created)


async def scenario() -> None:
    table = Table()
    settings = Settings(rank_window=WINDOW, alert_window=ALERT, fetch_interval=STEP)
    board = Board.holding_alert_window(WINDOW, ALERT, STEP)
    processor = Processor(settings, cast(Any, table), cast(Any, table), board)
    ticks = [STEP * i for i in range(1, 121)]  # two hours: the first has left the window
    for t in ticks:
        table.rows[t] = Point(MARKET, t, 100.0 + (t % 7), 5.0)
    await processor.preload([MARKET], ticks[-1])
    loaded = processor.loaded[MARKET]

    # A replay of every record, all created well before that read: nothing to re-read, and
    # the alert windows behind the held values are read two windows at a time, so one Query
    # serves the next alert window's worth of points (10 here; 60 at one-minute ticks).
    before = table.queries
    await processor.handle([change(table.rows[t], loaded - 2 * CREATED_SLACK) for t in ticks])
    assert not board.stale
    assert table.queries - before <= len(ticks) * STEP // ALERT

    # A spike written behind the held values, created now: judged on its window, alerted once.
    spiked = Point(MARKET, ticks[-30], 1000.0, 5.0)
    table.rows[spiked.t] = spiked
    await processor.handle([change(spiked, loaded + 1)])
    assert [a.t for a in table.alerts] == [spiked.t]
    assert MARKET in board.stale  # a sealed point changed: its old value is not in memory

    # Two ticks on: the oldest sealed points leave the window, read back and taken out.
    for t in (ticks[-1] + STEP, ticks[-1] + 2 * STEP):
        table.rows[t] = Point(MARKET, t, 101.5, 6.0)
        await processor.handle([change(table.rows[t], loaded + 2)])
    while not board.settled:
        await processor.settle()
    end = max(table.rows)
    values = [p.price for t, p in sorted(table.rows.items()) if t > end - WINDOW]
    (row,) = board.rows()
    assert row.stats["price"].count == len(values)
    assert row.stats["price"].stdev == statistics.stdev(values)
    assert len(board.series[MARKET]["price"]) <= (ALERT + STEP) // STEP  # held: the alert window


def test_replays_spans_and_re_reads_over_a_sealed_board() -> None:
    asyncio.run(scenario())


def figures_are_the_stored_points(table: Table, board: Board) -> None:
    """The board's figures are those of the stored points in the window (the stdev to the
    rounding `statistics` adds: the board's is rounded once, from exact sums)."""
    end = max(table.rows)
    values = [p.price for t, p in sorted(table.rows.items()) if t > end - WINDOW]
    (row,) = board.rows()
    assert row.stats["price"].count == len(values)
    assert row.stats["price"].mean == statistics.fmean(values)
    assert row.stats["price"].stdev == pytest.approx(statistics.stdev(values), rel=1e-12)


async def reading_ahead() -> None:
    table = Table()
    settings = Settings(rank_window=WINDOW, alert_window=ALERT, fetch_interval=STEP)
    board = Board.holding_alert_window(WINDOW, ALERT, STEP)
    processor = Processor(settings, cast(Any, table), cast(Any, table), board)
    for t in range(STEP, 2 * WINDOW, STEP):
        table.rows[t] = Point(MARKET, t, 100.0 + (t % 11), 5.0)
    await processor.preload([MARKET], max(table.rows))
    loaded = processor.loaded[MARKET]

    async def tick(t: int) -> None:
        table.rows[t] = Point(MARKET, t, 103.25, 6.0)
        await processor.handle([change(table.rows[t], loaded + 2)])

    # Read ahead: one read, of the point the next tick takes out of the window.
    await processor.read_ahead()
    leaving = board.horizon() + STEP
    assert table.reads == [[(MARKET, leaving)]]
    await processor.read_ahead()  # once per tick
    assert len(table.reads) == 1
    # The next tick's read-back waits for no table read, even while the stream is busy.
    await tick(max(table.rows) + STEP)
    await processor.settle(busy=True)
    assert board.settled
    assert len(table.reads) == 1
    figures_are_the_stored_points(table, board)

    # A point read ahead, then changed: its market is re-read, not given the old value.
    await processor.read_ahead()
    leaving = board.horizon() + STEP
    table.rows[leaving] = Point(MARKET, leaving, 500.0, 5.0)
    await processor.handle([change(table.rows[leaving], loaded + 3)])
    assert MARKET in board.stale
    await processor.settle()  # re-read before the tick: its sums hold the new value
    assert board.settled
    await tick(max(table.rows) + STEP)
    while not board.settled:
        await processor.settle()
    figures_are_the_stored_points(table, board)


def test_the_next_ticks_read_backs_are_read_ahead() -> None:
    """The sealed points the next tick takes out of the window are read once, ahead of it;
    at the tick they come out with no table read, and the figures are the stored points'."""
    asyncio.run(reading_ahead())
