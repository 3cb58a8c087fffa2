"""The alerter's state on disk, with the stream positions it reflects: a restart resumes from it.

Without it a restarted alerter reads every market's rank window back from the table (one Query
per market, about a minute for 1,000 markets × 1,440 points). With it, the restart reads one
file, then replays the stream from the positions the file names: every record after them is
applied again, which is harmless (a point is upserted by its tick, an alert is recorded once).

The file holds, for each market, its series (the held ticks and values and the exact sums, so
figures are bit-identical), its sealed ticks off the grid and those still to be taken out, when
it was read from the table, its latest point and its last alert; the markets to read again;
and, for each shard, the sequence number of the last record whose effect it contains.
It is written every `TRACKER_CHECKPOINT_INTERVAL` seconds and at a clean stop, atomically (a
temporary file renamed), so a kill -9 leaves the previous one whole.

It is used only when it is this replica's (`TRACKER_WORKER_ID`), for the same tables and
windows, and young enough that the stream still holds every record after its positions
(DynamoDB keeps 24 hours). Anything else, or a damaged file, and the alerter reads the table
as before, saying why.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from common.models import METRICS, Market, Metric, Point
from common.settings import Settings
from common.window import Board, Series

log = logging.getLogger(__name__)

MAGIC = b"tracker-alerter-state 2\n"
MAX_AGE = 12 * 3600.0  # older, the stream may have dropped records after its positions


@dataclass
class State:
    """What a checkpoint restores: the board, each market's last alert, the shard positions."""

    written_at: float
    positions: dict[str, str]
    last_alert: dict[Market, int | None] = field(default_factory=dict)  # a key per market
    loaded: dict[Market, float] = field(default_factory=dict)  # when read from the table


def _identity(settings: Settings) -> dict[str, Any]:
    return {
        "prefix": settings.table_prefix,
        "owner": settings.worker_id,
        "rank_window": settings.rank_window,
        "alert_window": settings.alert_window,
        "fetch_interval": settings.fetch_interval,  # the grid of sealed ticks
    }


def capture(
    settings: Settings,
    board: Board,
    stream: str,
    positions: dict[str, str],
    last_alert: dict[Market, int | None],
    loaded: dict[Market, float],
    now: float,
) -> tuple[dict[str, Any], list[bytes]]:
    """The checkpoint's header and arrays, copied from the live state (what is shared with it
    is immutable; the header's JSON and the compression are `write`'s, in a thread)."""
    markets: list[list[Any]] = []
    chunks: list[bytes] = []
    for market, per_metric in board.series.items():
        latest = board.latest(market)
        if latest is None or market not in last_alert:
            continue  # still being loaded: the next start loads it again
        entry: list[Any] = [market.key, latest.t, latest.price, latest.volume]
        entry.append(last_alert.get(market))
        odd, pending = board.odd.get(market, ()), board.pending.get(market, ())
        entry += [loaded.get(market, 0.0), list(odd), list(pending)]
        for metric in METRICS:
            ticks, values, sums = per_metric[metric].state()
            entry += [len(ticks), len(values), list(sums)]
            chunks += [ticks, values]
        markets.append(entry)
    header = _identity(settings) | {
        "stream": stream,
        "written_at": now,
        "window_end": board.window_end,
        "stale": [m.key for m in board.stale | board.watching],  # re-read (or being re-read)
        "positions": dict(positions),
        "markets": markets,
    }
    return header, chunks


def encode(header: dict[str, Any], chunks: list[bytes]) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<Q", len(head)) + head + zlib.compress(b"".join(chunks), 1)


def decode(data: bytes, settings: Settings, stream: str, board: Board, now: float) -> State:
    """Fill `board` (empty) from a checkpoint's bytes; ValueError saying why it cannot be used."""
    if not data.startswith(MAGIC):
        raise ValueError("not an alerter state file")
    offset = len(MAGIC)
    (size,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    header = json.loads(data[offset : offset + size])
    for key, wanted in (_identity(settings) | {"stream": stream}).items():
        if header.get(key) != wanted:
            raise ValueError(f"written for {key} {header.get(key)!r}, now {wanted!r}")
    age = now - float(header["written_at"])
    if age > MAX_AGE:
        raise ValueError(f"{age / 3600:.1f} h old: the stream may no longer hold what followed")
    body = memoryview(zlib.decompress(data[offset + size :]))
    state = State(float(header["written_at"]), dict(header["positions"]))
    at = 0
    for entry in header["markets"]:
        key, t, price, volume, last, loaded, odd, pending = entry[:8]
        market = Market.from_key(key)
        per_metric: dict[Metric, Series] = {}
        for i, metric in enumerate(METRICS):
            n_ticks, n_values, sums = entry[8 + 3 * i : 11 + 3 * i]
            ticks = bytes(body[at : at + n_ticks])
            values = bytes(body[at + n_ticks : at + n_ticks + n_values])
            at += n_ticks + n_values
            per_metric[metric] = Series.restored(ticks, values, sums)
        board.restore(market, per_metric, Point(market, int(t), price, volume))
        if odd:
            board.odd[market] = [int(x) for x in odd]
        if pending:
            board.pending[market] = [int(x) for x in pending]
        state.last_alert[market] = last
        state.loaded[market] = float(loaded)
    if at != len(body):
        raise ValueError("damaged: the arrays do not match the header")
    board.window_end = int(header["window_end"])
    board.stale.update(Market.from_key(k) for k in header["stale"])
    return state


def write(settings: Settings, header: dict[str, Any], chunks: list[bytes]) -> int:
    """Encode and replace the checkpoint atomically; its size. Blocking: run it in a thread."""
    data = encode(header, chunks)
    target = settings.state_file
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    return len(data)


def load(settings: Settings, stream: str, board: Board) -> State | None:
    """The checkpoint restored into `board` (empty before), or None, logged, when there is none
    or it cannot be used (then `board` is left empty)."""
    target = settings.state_file
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        log.info("no state checkpoint at %s: the windows are read from the table", target)
        return None
    except OSError as exc:
        log.warning("state checkpoint %s unreadable (%s): reading the table instead", target, exc)
        return None
    started = time.monotonic()
    try:
        state = decode(data, settings, stream, board, time.time())
    except (ValueError, KeyError, TypeError, IndexError, struct.error, zlib.error) as exc:
        log.warning("state checkpoint %s not used (%s): reading the table instead", target, exc)
        board.clear()
        return None
    log.info(
        "resumed from the state checkpoint of %.0f s ago: %d market(s), %d shard position(s), "
        "%.1f MB read in %.2f s; replaying the stream from there",
        time.time() - state.written_at,
        len(state.last_alert),
        len(state.positions),
        len(data) / 1e6,
        time.monotonic() - started,
    )
    return state
