"""A day of one-minute history for 20,000 markets, loaded in minutes: rows written straight into
DynamoDB Local's SQLite file (28.8 M points; through BatchWriteItem, at ~3,600 points a second
here, that takes over two hours).

Each row is the one DynamoDB Local itself writes for the same PutItem. The two hashes it keeps
per row (of the partition key and of the sort key) are taken from rows it wrote: every
market's newest point, one market's point at every tick and a random sample go through the API
first. The sort key's encoding,
the item size and the JSON are built the way its rows show. Before anything is loaded, every row
it wrote is compared, column by column, with the row built for the same point; one difference
stops the load.

The loaded points have no stream records, like history older than the stream's 24-hour
retention: the alerter meets them through its first-sight Query of each market's window."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from common.db import Store
from common.items import point_item
from common.models import Market, Point

TableRow = tuple[bytes, bytes, bytes, bytes, int, bytes]  # the columns below, in order
COLUMNS = "hashKey, rangeKey, hashValue, rangeValue, itemSize, ObjectJSON"
ORDER = ("p", "x", "t", "m", "v")  # attribute order of DynamoDB Local's ObjectJSON
SAMPLE = 2000  # further points written through the API, to check the rows built against


def plain(text: str) -> str:
    """A number as DynamoDB Local stores it: no exponent, no trailing zeros ("1e-05" →
    "0.00001", "1350.0" → "1350")."""
    return format(Decimal(text).normalize(), "f")


def number_size(text: str) -> int:
    """DynamoDB's size of a number: a byte per pair of significant digits, the pairs aligned on
    the decimal point, plus one (zero: one byte)."""
    value = Decimal(text)
    if value == 0:
        return 1
    _, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    highest = exponent + len(digits) - 1  # the power of ten of the first significant digit
    return (highest // 2 - exponent // 2 + 1) + 1


def range_key(t: int) -> bytes:
    """DynamoDB Local's sortable text of a numeric sort key, for the ten-digit epoch seconds of
    this century: exponent byte 0x9E, then the digits padded to 38."""
    if not 10**9 <= t < 10**10:
        raise ValueError(f"only ten-digit times are encoded here, not {t}")
    return f">>009E{str(t).ljust(38, '0')}".encode()


def built(
    point: Point, retention: int, hashes: dict[bytes, bytes], ranges: dict[bytes, bytes]
) -> TableRow:
    """The row DynamoDB Local writes for `point` (KeyError: a market or tick with no anchor)."""
    item = point_item(point, retention)
    attributes = []
    size = 0
    for name in ORDER:
        if name not in item:
            continue
        ((kind, value),) = item[name].items()
        if kind == "N":
            value = plain(value)
            size += len(name) + number_size(value)
        else:
            assert '"' not in value and "\\" not in value, value
            size += len(name) + len(value.encode())
        attributes.append(f'"{name}":{{"{kind}":"{value}"}}')
    key = point.market.key.encode()
    sort = range_key(point.t)
    return key, sort, hashes[key], ranges[sort], size, ("{" + ",".join(attributes) + "}").encode()


class Day:
    """Points every `step` seconds for a day ending at `end`, for each market of `levels`:
    prices at six significant digits within a few tenths of a percent of its level."""

    def __init__(self, levels: Mapping[Market, float], end: int, step: int = 60) -> None:
        self.markets = sorted(levels, key=lambda m: m.key)
        self.ticks = list(range(end - 86400 + step, end + 1, step))
        self.levels = [levels[m] for m in self.markets]

    def series(self, i: int) -> list[Point]:
        rng = random.Random(i)
        market, level = self.markets[i], self.levels[i]
        return [
            Point(market, t, float(f"{level * (1 + rng.gauss(0, 0.002)):.6g}"), 1000.0 + j)
            for j, t in enumerate(self.ticks)
        ]

    def __len__(self) -> int:
        return len(self.markets) * len(self.ticks)


async def write_anchors(store: Store, day: Day) -> int:
    """Through the API: first every market's newest tick (so the alerter's first record of
    each market is its newest, and its first-sight Query reads the whole day), then the first
    market's every tick (so each tick's hash is known) and a random sample."""
    rng = random.Random(13)
    newest = [day.series(i)[-1] for i in range(len(day.markets))]
    await store.put_points(newest)
    chosen = {(0, j) for j in range(len(day.ticks) - 1)} | {
        (rng.randrange(len(day.markets)), rng.randrange(len(day.ticks) - 1)) for _ in range(SAMPLE)
    }
    wanted: dict[int, list[int]] = {}
    for i, j in chosen:
        wanted.setdefault(i, []).append(j)
    rest = [p for i, js in wanted.items() for p in map(day.series(i).__getitem__, js)]
    await store.put_points(rest)
    return len(newest) + len(rest)


def load(database: Path, table: str, day: Day, retention: int) -> int:
    """Insert every point of `day` that is not in the table yet, each row checked first where
    DynamoDB Local wrote the same point itself (the anchors): a difference raises. DynamoDB
    Local must be stopped. Returns the rows inserted."""
    db = sqlite3.connect(database)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -2000000")  # 2 GB of pages: the indexes stay cached
        stored: dict[tuple[bytes, bytes], TableRow] = {
            (row[0], row[1]): row
            for row in db.execute(f'SELECT {COLUMNS} FROM "{table}"')  # noqa: S608 (our table name)
        }
        hashes = {key: row[2] for (key, _), row in stored.items()}
        ranges = {sort: row[3] for (_, sort), row in stored.items()}
        # The table name is DynamoDB Local's own, read from its file; the values are bound.
        insert = f'INSERT INTO "{table}" ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)'  # noqa: S608
        inserted = checked = 0
        started = time.monotonic()
        for i in range(len(day.markets)):
            rows = []
            for point in day.series(i):
                row = built(point, retention, hashes, ranges)
                written = stored.get(row[:2])
                if written is None:
                    rows.append(row)
                elif written != row:
                    raise RuntimeError(f"built {row!r}, DynamoDB Local wrote {written!r}")
                else:
                    checked += 1
            db.executemany(insert, rows)
            inserted += len(rows)
            if (i + 1) % max(1, len(day.markets) // 10) == 0:
                db.commit()
                rate = inserted / (time.monotonic() - started)
                print(f"  loaded {inserted:,} points ({rate:,.0f}/s)", flush=True)
        db.commit()
        if checked != len(stored):
            raise RuntimeError(f"{len(stored) - checked} row(s) in the table are not of the day")
        return inserted
    finally:
        db.close()
