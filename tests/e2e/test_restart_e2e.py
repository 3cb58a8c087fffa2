"""An alerter restart resumes from its state checkpoint and replays the stream from there, with
real processes on DynamoDB Local: after a SIGKILL that came after the checkpoint (so every record
since is delivered a second time, overwrites among them), its figures equal a rebuild from the
table; a restart with no checkpoint reads the table and gets the same figures, slower. The
alerter holds only the alert window's values: older points are in exact sums, read back as they
leave the rank window, and re-read when one of them is overwritten."""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from pathlib import Path

from common.db import Store
from common.models import Market, Point
from common.snapshot import Snapshot
from common.window import Board, BoardRow
from tests.helpers.processes import TRACKER, Processes
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

MARKETS = [Market("bitfinex", f"r{i}usd") for i in range(60)]
STEP, TICKS = 10, 100


def same(a: BoardRow, b: BoardRow) -> bool:
    """Equal as a user sees them: latest point exactly, figures within 1e-9 relative."""
    if (a.market, a.t, a.price, a.volume) != (b.market, b.t, b.price, b.volume):
        return False
    for metric, x in a.stats.items():
        y = b.stats[metric]
        if x.count != y.count:
            return False
        for u, v in ((x.mean, y.mean), (x.stdev, y.stdev)):
            if (u is None) != (v is None) or (
                u is not None and v is not None and not math.isclose(u, v, rel_tol=1e-9)
            ):
                return False
    return True


async def rebuilt(store: Store, rank_window: int) -> list[BoardRow]:
    board = Board(rank_window)
    for market in MARKETS:
        board.load(await store.query_points(market, 0, 2**40))
    return board.rows()


async def published(store: Store) -> Snapshot | None:
    return await store.get_snapshot()


async def test_restart_resumes_from_the_checkpoint_and_equals_a_rebuild(
    dynamodb_url: str, processes: Processes, tmp_path: Path
) -> None:
    settings = make_settings(dynamodb_url, rank_window=3600, alert_window=600, fetch_interval=10)
    rng = random.Random(11)
    now = int(time.time()) // STEP * STEP
    ticks = [now - STEP * (TICKS - i) for i in range(TICKS)]
    env = {
        "AWS_ENDPOINT_URL": dynamodb_url,
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_RANK_WINDOW": "3600",
        "TRACKER_ALERT_WINDOW": "600",
        "TRACKER_FETCH_INTERVAL": str(STEP),
        "TRACKER_WORKER_ID": "restart-a",
        "TRACKER_STATE_DIR": str(tmp_path / "state"),
        "TRACKER_CHECKPOINT_INTERVAL": "3600",  # only the clean stop writes one
    }

    def price() -> float:
        return round(rng.uniform(0.001, 50000), rng.randint(1, 6))

    async with tables(settings) as store:
        await store.put_points(
            [Point(m, t, price(), round(rng.uniform(0, 1e6), 2)) for t in ticks for m in MARKETS]
        )

        async def fresh(newest: int, since: float = 0.0) -> bool:
            """The board published after `since` holds every market up to `newest`, exactly."""
            board = await published(store)
            if board is None or board.written_at < since or board.window_end != newest:
                return False
            if len(board.rows) != len(MARKETS):
                return False
            reference = await rebuilt(store, settings.rank_window)
            return all(same(a, b) for a, b in zip(board.rows, reference, strict=True))

        async def restart(name: str, newest: int) -> float:
            started, wall = time.monotonic(), time.time()
            processes.start(name, [*TRACKER, "alert"], env)
            await wait_for(lambda: fresh(newest, wall), 120, f"{name}: figures equal a rebuild")
            return time.monotonic() - started

        first = await restart("first", ticks[-1])
        assert await asyncio.to_thread(processes.stop, "first") == 0
        assert any((tmp_path / "state").glob("*.state")), "a clean stop writes a checkpoint"

        resumed = await restart("second", ticks[-1])
        assert "resumed from the state checkpoint" in processes.log("second")
        # Writes after the checkpoint: a tick 45 minutes on, so the oldest ticks leave the
        # window (sealed points, read back to come out of the sums), and overwrites of older
        # ticks (all of them sealed by then: those 40 markets are read again).
        newest = ticks[-1] + 2700
        later = [Point(m, newest, price(), 1.0) for m in MARKETS]
        later += [Point(m, rng.choice(ticks[-50:]), price(), None) for m in MARKETS[:20]]
        later += [Point(m, rng.choice(ticks[10:30]), price(), 2.0) for m in MARKETS[20:40]]
        await store.put_points(later)
        await wait_for(lambda: fresh(newest), 60, "the later writes handled")
        await asyncio.to_thread(processes.kill, "second")  # after them: no new checkpoint

        again = re.findall(r"read (\d+) market window\(s\) again", processes.log("second"))
        assert sum(map(int, again)) >= 40, again
        replayed = await restart("third", newest)
        print(processes.log("third"))
        log = processes.log("third")
        assert "resumed from the state checkpoint" in log
        assert "the state checkpoint's position" in log  # the shard replayed from there

        assert await asyncio.to_thread(processes.stop, "third") == 0
        for state in (tmp_path / "state").glob("*.state"):
            state.unlink()  # the table, as with no checkpoint at all
        from_table = await restart("fourth", newest)
        assert "no state checkpoint" in processes.log("fourth")

    print(
        f"\nalerter start, {len(MARKETS)} markets × {TICKS} points, to figures equal to a "
        f"rebuild: first {first:.1f} s, from checkpoint {resumed:.1f} s, after kill -9 with "
        f"replay {replayed:.1f} s, from the table {from_table:.1f} s"
    )
