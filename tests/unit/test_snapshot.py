"""Boards: stored in parts and read back whole, and several replicas' boards merged into one."""

from __future__ import annotations

from common.models import METRICS, Market
from common.snapshot import PART_ROWS, Snapshot, decode, encode, merge
from common.stats import Summary
from common.window import BoardRow

WINDOW = 86_400
BTC = Market("bitfinex", "btcusd")
ETH = Market("bitfinex", "ethusd")


def row(market: Market, t: int, price: float) -> BoardRow:
    stats = {m: Summary(2, price, 0.5) for m in METRICS}
    return BoardRow(market, t, price, 1.0, stats)


def board(owner: str, end: int, written_at: float, *rows: BoardRow) -> Snapshot:
    return Snapshot(end, WINDOW, written_at, rows, owner)


def test_a_board_of_many_parts_reads_back_equal() -> None:
    n = PART_ROWS * 2 + 1
    rows = tuple(row(Market("kraken", f"s{i:05d}"), 600, float(i)) for i in range(n))
    snapshot = board("replica-a", 600, 1234.5, *rows)
    parts = encode(snapshot)
    assert len(parts) == 3
    assert decode(parts) == snapshot


def test_parts_of_different_writes_are_not_a_board() -> None:
    rows = tuple(row(Market("kraken", f"s{i:05d}"), 600, 1.0) for i in range(PART_ROWS + 1))
    first = encode(board("a", 600, 1.0, *rows))
    second = encode(board("a", 660, 2.0, *rows))
    assert decode([first[0], second[1]]) is None
    assert decode(first[:1]) is None
    assert decode([]) is None


def test_merge_keeps_each_markets_newest_row() -> None:
    """A market that moved to another replica: the one that saw it last wins, whichever
    board was published later."""
    a = board("a", 660, 10.0, row(BTC, 600, 1.0), row(ETH, 660, 2.0))
    b = board("b", 660, 5.0, row(BTC, 660, 3.0))
    merged = merge([a, b])
    assert merged is not None
    assert merged.by_market() == {BTC: row(BTC, 660, 3.0), ETH: row(ETH, 660, 2.0)}
    assert (merged.window_end, merged.written_at, merged.owner) == (660, 10.0, "")


def test_merge_breaks_ties_by_the_later_board() -> None:
    a = board("a", 660, 10.0, row(BTC, 660, 1.0))
    b = board("b", 660, 11.0, row(BTC, 660, 2.0))
    for boards in ([a, b], [b, a]):
        merged = merge(boards)
        assert merged is not None and merged.rows == (row(BTC, 660, 2.0),)


def test_merge_drops_a_board_a_whole_window_behind() -> None:
    gone = board("gone", 1000, 1.0, row(ETH, 1000, 9.0))
    live = board("live", 1000 + WINDOW, 2.0, row(BTC, 1000 + WINDOW, 1.0))
    merged = merge([gone, live])
    assert merged is not None and [r.market for r in merged.rows] == [BTC]
    behind_less = board("slow", 1001, 1.0, row(ETH, 1001, 9.0))
    merged = merge([behind_less, live])
    assert merged is not None and {r.market for r in merged.rows} == {BTC, ETH}


def test_merge_of_one_or_none() -> None:
    only = board("a", 60, 1.0, row(BTC, 60, 1.0))
    assert merge([only]) is only
    assert merge([]) is None
