"""The board snapshot: every market's latest point and window figures, as the service reads them.

Each alerter replica publishes the board of the markets its shards carry (its `owner` names
it), compressed in parts of at most `PART_ROWS` markets so that 10,000 markets stay under
DynamoDB's 400 KB item limit; its parts are replaced in one transaction. The service reads
every replica's board and `merge`s them into one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from common.models import METRICS, Market, Metric
from common.parts import pack, unpack
from common.stats import Summary
from common.window import BoardRow

PART_ROWS = 2000


@dataclass(frozen=True)
class Snapshot:
    window_end: int
    rank_window: int
    written_at: float
    rows: tuple[BoardRow, ...]
    owner: str = ""  # the alerter replica that published it ("" once merged)

    @property
    def window_start(self) -> int:
        return self.window_end - self.rank_window

    @property
    def version(self) -> str:
        return f"{self.window_end}-{self.written_at:.6f}"

    def by_market(self) -> dict[Market, BoardRow]:
        return self._index[0]

    @property
    def exchanges(self) -> frozenset[str]:
        return self._index[1]

    @cached_property
    def _index(self) -> tuple[dict[Market, BoardRow], frozenset[str]]:
        """Built once per snapshot: every request of a tick reuses it."""
        by_market = {row.market: row for row in self.rows}
        return by_market, frozenset(m.exchange for m in by_market)


def _row(row: BoardRow) -> list[object]:
    figures: list[object] = []
    for metric in METRICS:
        s = row.stats[metric]
        figures += [s.count, s.mean, s.stdev]
    return [row.market.exchange, row.market.symbol, row.t, row.price, row.volume, *figures]


def _unrow(raw: list[object]) -> BoardRow:
    exchange, symbol, t, price, volume, *figures = raw
    stats: dict[Metric, Summary] = {}
    for i, metric in enumerate(METRICS):
        count, mean, stdev = figures[3 * i : 3 * i + 3]
        stats[metric] = Summary(int(count), mean, stdev)  # type: ignore[call-overload, arg-type]
    return BoardRow(Market(str(exchange), str(symbol)), int(t), float(price), volume, stats)  # type: ignore[call-overload, arg-type]


def encode(snapshot: Snapshot) -> list[bytes]:
    """Compressed JSON parts (common/parts.py); part 0 carries the header."""
    header = {
        "window_end": snapshot.window_end,
        "rank_window": snapshot.rank_window,
        "owner": snapshot.owner,
    }
    return pack(snapshot.written_at, header, [_row(r) for r in snapshot.rows], PART_ROWS)


def decode(parts: list[bytes]) -> Snapshot | None:
    """One replica's board, or None when parts are missing or from different writes."""
    unpacked = unpack(parts)
    if unpacked is None:
        return None
    header, rows = unpacked
    written_at = float(header.get("w", header.get("written_at", 0)))  # older boards: written_at
    return Snapshot(
        header["window_end"],
        header["rank_window"],
        written_at,
        tuple(_unrow(raw) for raw in rows),
        header.get("owner", ""),
    )


def behind(window_end: int, newest: int, rank_window: int) -> bool:
    """A board whose newest tick is a whole window older than the newest board's: its
    replica is gone for good, and none of its figures still hold."""
    return window_end <= newest - rank_window


def merge(boards: Sequence[Snapshot]) -> Snapshot | None:
    """The replicas' boards as one: each market's row from the board that saw it last.

    A market moves between replicas when a shard changes hands; the replica that took it
    over reloads it from the table and has the newer tick, while the other's row goes stale
    until its window drops it. Boards `behind` the newest are left out.
    """
    if len(boards) <= 1:
        return boards[0] if boards else None
    end = max(b.window_end for b in boards)
    live = sorted(
        (b for b in boards if not behind(b.window_end, end, b.rank_window)),
        key=lambda b: b.written_at,
    )
    newest: dict[Market, BoardRow] = {}
    for board in live:  # later writes win ties: their figures are the more recent
        for row in board.rows:
            seen = newest.get(row.market)
            if seen is None or row.t >= seen.t:
                newest[row.market] = row
    rows = tuple(newest[m] for m in sorted(newest))
    return Snapshot(end, live[-1].rank_window, live[-1].written_at, rows)
