"""The buffer's copy on disk, so that points fetched but not yet written outlive the process.

Each batch is appended as one JSON line when it joins the buffer, and a `done` line follows once
DynamoDB has it (or the bound dropped it); when the buffer is empty the file is emptied. A
fetcher that starts finds what the last one left — it was killed, or its host stopped it
mid-outage — and writes that first. Appends are not fsync'd: a killed process loses nothing
(the kernel has the bytes); a machine that loses power may lose the last lines. A line cut
short by a kill is skipped, and counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.models import Market, Point

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    source: str
    t: int
    points: Sequence[Point]

    @property
    def key(self) -> tuple[str, int]:
        return self.source, self.t


def _line(batch: Batch) -> str:
    rows = [[p.market.exchange, p.market.symbol, p.price, p.volume] for p in batch.points]
    return json.dumps({"source": batch.source, "t": batch.t, "points": rows}) + "\n"


def _batch(record: dict[str, object]) -> Batch:
    t = int(record["t"])  # type: ignore[call-overload]
    rows: list[list[object]] = record["points"]  # type: ignore[assignment]
    points = [Point(Market(str(e), str(s)), t, float(p), v) for e, s, p, v in rows]  # type: ignore[arg-type]
    return Batch(str(record["source"]), t, points)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Batch]:
        """The batches the last process left unwritten, oldest first."""
        if not self.path.exists():
            return []
        pending: dict[tuple[str, int], Batch] = {}
        broken = 0
        for text in self.path.read_text().splitlines():
            try:
                record = json.loads(text)
                if "done" in record:
                    source, t = record["done"]
                    pending.pop((source, t), None)
                else:
                    batch = _batch(record)
                    pending[batch.key] = batch
            except (ValueError, KeyError, TypeError):
                broken += 1
        if broken:
            log.warning("spool %s: skipped %d line(s) cut short by a kill", self.path, broken)
        return list(pending.values())

    def append(self, batch: Batch) -> None:
        self._write(_line(batch))

    def done(self, batch: Batch) -> None:
        self._write(json.dumps({"done": [batch.source, batch.t]}) + "\n")

    def clear(self) -> None:
        """Nothing is pending (or all of it is about to be appended anew): an empty file."""
        self._write("", mode="w")

    def _write(self, text: str, mode: str = "a") -> None:
        # Opened per write (twice a tick): nothing to close, however the fetcher ends.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, mode) as out:
                out.write(text)
        except OSError as exc:  # a full or read-only disk costs durability, never the fetch
            log.warning("spool %s not written (%s): points buffered in memory only", self.path, exc)
