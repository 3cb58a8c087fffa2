"""The board that holds only the alert window's values: whatever the order of writes, their
records and the table work (read-backs, re-reads), once everything has been delivered and
settled its figures are those of the stored points, and its memory does not grow with the rank
window."""

from __future__ import annotations

import statistics
import sys
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from common.models import Market, Point
from common.window import Board

WINDOW, HOLD, GRID = 600, 180, 60
MARKETS = [Market("x", f"m{i}") for i in range(3)]


class Table:
    """The points table and its stream: a write lands at once, its record comes later."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.rows: dict[tuple[Market, int], Point] = {}
        self.records: deque[tuple[Market, int, Point | None]] = deque()

    def write(self, point: Point) -> None:
        self.rows[(point.market, point.t)] = point
        self.records.append((point.market, point.t, point))

    def delete(self, market: Market, t: int) -> None:
        if self.rows.pop((market, t), None) is not None:
            self.records.append((market, t, None))

    def deliver(self, count: int) -> None:
        for _ in range(min(count, len(self.records))):
            market, t, point = self.records.popleft()
            if point is None:
                self.board.remove(market, t)
            else:
                self.board.apply(point)

    def settle(self) -> None:
        """What the consumer's settle does, reading this table."""
        board = self.board
        for market in list(board.stale):
            stored = sorted(
                (p for (m, _), p in self.rows.items() if m == market), key=lambda p: p.t
            )
            board.replace(market, [p for p in stored if p.t > board.horizon()])
        asked = {m: list(ticks) for m, ticks in board.pending.items()}
        board.take_out(asked, {k: p for k, p in self.rows.items() if k[1] in asked.get(k[0], [])})


moves = st.lists(
    st.tuples(
        st.sampled_from(["tick", "late", "odd", "delete", "deliver", "settle"]),
        st.integers(0, 2),  # market
        st.integers(1, 12),  # how far back (ticks), or how many records
        st.integers(1, 10_000),  # a price, in hundredths
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(moves)
def test_sealed_windows_equal_the_stored_points(steps: list[tuple[str, int, int, int]]) -> None:
    board = Board(WINDOW, HOLD, GRID)
    table = Table(board)
    now = 0
    for kind, m, back, cents in steps:
        market, price = MARKETS[m], cents / 100
        if kind == "tick":
            now += GRID
            for other in MARKETS[: m + 1]:
                table.write(Point(other, now, price, None if cents % 5 == 0 else cents * 1.5))
        elif kind == "late":  # a backfill or a rewrite of an older tick
            table.write(Point(market, max(0, now - back * GRID), price * 2, None))
        elif kind == "odd":  # a tick off the grid
            table.write(Point(market, max(1, now - back * GRID + 7), price, cents / 7))
        elif kind == "delete":
            table.delete(market, max(0, now - back * GRID))
        elif kind == "deliver":
            table.deliver(back)
        else:
            table.settle()
    table.deliver(len(table.records))
    while not board.settled:
        table.settle()

    end = max((t for (_, t) in table.rows), default=0)
    assert board.window_end == end
    for row in board.rows():
        for metric in ("price", "volume"):
            values = [
                v
                for (m, t), p in sorted(table.rows.items(), key=lambda kv: kv[0][1])
                if m == row.market and t > end - WINDOW and (v := p.value(metric)) is not None
            ]
            s = row.stats[metric]
            assert s.count == len(values), (row.market, metric)
            if values:
                assert s.mean is not None and abs(s.mean - statistics.fmean(values)) <= 1e-12 * max(
                    values
                )
            if len(values) >= 2:
                assert s.stdev == statistics.stdev(values) or abs(
                    s.stdev - statistics.stdev(values)  # type: ignore[operator]
                ) <= 1e-12 * statistics.stdev(values)
        held = board.series[row.market]["price"].ticks
        assert all(t > end - HOLD for t in held)  # only the alert window is in memory
    on_board = {r.market for r in board.rows()}
    in_window = {m for (m, t) in table.rows if t > end - WINDOW}
    assert on_board == in_window


def test_memory_per_market_does_not_grow_with_the_window() -> None:
    """A day of one-minute points takes the memory of an hour and a tick, plus a few words."""

    def held_bytes(window: int) -> int:
        board = Board.holding_alert_window(window, 3600, 60)
        market = Market("x", "btcusd")
        for t in range(60, 86_400 * 2, 60):
            board.apply(Point(market, t, 40_000 + (t % 977) / 100, 1e6 + t))
            board.take_out(dict(board.pending), {})  # nothing read back: only memory counts
        per_metric = board.series[market]
        return sum(
            sys.getsizeof(s.ticks)
            + sys.getsizeof(s.values)
            + sum(map(sys.getsizeof, s.sums.state()))
            for s in per_metric.values()
        )

    hour, day, week = held_bytes(3600), held_bytes(86_400), held_bytes(7 * 86_400)
    assert day == week  # independent of the window
    assert day - hour < 200  # and of how much of it is sealed, but for the sums' size


def test_a_tick_off_the_grid_is_read_back_when_it_leaves_and_read_ahead_before() -> None:
    """An off-grid point, sealed, leaves the window at the tick after it: `leaving_next` names
    it one tick before, `pending` asks for it then, and taking it out keeps the figures those
    of the stored points."""
    market = MARKETS[0]
    board = Board(WINDOW, HOLD, GRID)
    rows: dict[int, Point] = {}

    def write(point: Point) -> None:
        rows[point.t] = point
        board.apply(point)

    odd = 3 * GRID + 7
    named = asked_for = 0
    for k in range(1, 30):
        before = board.horizon()
        write(Point(market, k * GRID, float(k), None))
        if k == 3:
            write(Point(market, odd, 100.0, None))
        asked = {m: list(ticks) for m, ticks in board.pending.items()}
        if odd in asked.get(market, []):
            assert before < odd <= board.horizon()
            asked_for += 1
        board.take_out(asked, {(m, t): rows[t] for m, ts in asked.items() for t in ts if t in rows})
        if odd in board.leaving_next().get(market, []):
            assert board.horizon() < odd <= board.horizon() + GRID
            named += 1
    assert (named, asked_for) == (1, 1)
    end = 29 * GRID
    values = [p.price for t, p in sorted(rows.items()) if t > end - WINDOW]
    (row,) = board.rows()
    assert row.stats["price"].count == len(values)
    assert abs((row.stats["price"].mean or 0) - statistics.fmean(values)) <= 1e-12
