"""The fetcher's spool: what a killed fetcher fetched but did not write is found again."""

from __future__ import annotations

from pathlib import Path

from common.models import Market, Point
from fetcher.spool import Batch, Spool


def batch(t: int, n: int = 3) -> Batch:
    points = [
        Point(Market("bitfinex", f"c{i}usd"), t, 1.5 + i, None if i else 7.0) for i in range(n)
    ]
    return Batch("bitfinex", t, points)


def test_pending_batches_survive_the_process(tmp_path: Path) -> None:
    """Appended batches not marked done come back, equal, oldest first; done ones do not."""
    spool = Spool(tmp_path / "s" / "spool.jsonl")
    for t in (60, 120, 180):
        spool.append(batch(t))
    spool.done(batch(60))  # then the process ends, or is killed: each write is complete
    again = Spool(tmp_path / "s" / "spool.jsonl").load()
    assert again == [batch(120), batch(180)]


def test_a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    """A kill in the middle of an append leaves half a line: it is skipped, the rest kept."""
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(batch(60))
    with open(path, "a") as out:
        out.write('{"source": "bitfinex", "t": 120, "points": [["bitf')
    assert Spool(path).load() == [batch(60)]


def test_clear_empties_it(tmp_path: Path) -> None:
    """Once everything is written the file is emptied, and appends start afresh."""
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(batch(60))
    spool.clear()
    spool.append(batch(120))
    assert Spool(path).load() == [batch(120)]
