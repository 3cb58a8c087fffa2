"""`make bench-scale`: issue 17's goals, each beside its figure from one run on DynamoDB Local,
with real `tracker` processes.

Stages (`BENCH_SCALE_STAGES`, a comma list; all by default, in this order):
- restart: the alerter's restart to fresh figures at 1,000 markets with a 1-hour and a 24-hour
  window of one-minute ticks, and at 400 markets of 10-second ticks, from its state checkpoint
  (stream replay) and from the table (the way every restart went before checkpoints); its
  memory per market, 24-hour window against 1-hour, both after a day of ticks;
- readers: mixed reads under load (wrk) against `tracker serve` with one worker and with two,
  and `GET /me/rules` (100 rules) polled beside that load;
- breadth: 20,000 markets at one-minute ticks with fetcher, alerter and service running
  (`BENCH_SCALE_MINUTES`, 15), on an empty table;
- day: the same on a table holding a day of history for all 20,000 markets, loaded by
  bench/history.py (`BENCH_SCALE_DAY_MINUTES`, 5; some 10 GB on disk under
  `BENCH_SCALE_DISK`, default the system's temporary directory);
- rules: the breadth run without and with 100,000 users' rules (bench/rules_breadth.py).
Goals this version does not measure are printed as such, never as met.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.breadth import BREADTH, breadth, breadth_day, rss
from bench.report import Row, median, pct, table, verdict
from bench.rules import user_with_rules
from common import aws
from common.db import Store
from common.models import Market, Point
from common.schema import init_db
from common.settings import Settings
from tracker import dynamodb_local

MARKETS = 1000
STEP = 60
RESTART_GOAL = 10.0  # seconds, issue 17 goal 2
BYTES_GOAL = 2048  # per market beyond the alert window's points, goal 3
ALERT_WINDOW = 1800  # shorter than every rank window here, as in use


class Bench:
    """`seeded` hours (default: `hours`) of points every `step` seconds for `markets`, consumed
    by a first alerter with an `hours` rank window, which stops cleanly (writing its
    checkpoint); then restarts timed, from it and from the table."""

    def __init__(
        self,
        url: str,
        hours: int,
        state: Path,
        markets: int = MARKETS,
        step: int = STEP,
        seeded: int | None = None,
    ) -> None:
        self.step = step
        self.count = markets
        self.points = hours * 3600 // step  # in the rank window
        self.seeded = (seeded or hours) * 3600 // step
        self.settings = Settings(
            aws_endpoint_url=url,
            table_prefix=f"scale{hours}h{step}s",
            rank_window=hours * 3600,
            alert_window=ALERT_WINDOW,  # the same in every case: memory beyond it compares
            fetch_interval=step,
            log_level="WARNING",
        )
        self.env = os.environ | {
            "AWS_ENDPOINT_URL": url,
            "TRACKER_FETCH_INTERVAL": str(step),
            "TRACKER_TABLE_PREFIX": self.settings.table_prefix,
            "TRACKER_RANK_WINDOW": str(self.settings.rank_window),
            "TRACKER_ALERT_WINDOW": str(self.settings.alert_window),
            "TRACKER_WORKER_ID": "bench-scale",
            "TRACKER_STATE_DIR": str(state),
            "TRACKER_CHECKPOINT_INTERVAL": "86400",  # only the clean stop writes one
            "TRACKER_LOG_LEVEL": "INFO",
        }
        self.state = state
        self.markets = [Market("bitfinex", f"s{i:05d}usd") for i in range(markets)]
        self.newest = int(time.time()) // step * step - step

    def alerter(self, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "tracker", "alert"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def fresh(self, store: Store, since: float) -> bool:
        board = await store.get_snapshot()
        return (
            board is not None
            and board.written_at >= since
            and board.window_end == self.newest
            and len(board.rows) == self.count
            and all(row.stats["price"].count == self.points for row in board.rows)
        )

    async def wait_fresh(self, store: Store, since: float, limit: float) -> float:
        started = time.monotonic()
        while not await self.fresh(store, since):
            if time.monotonic() - started > limit:
                raise TimeoutError(f"no fresh board within {limit:.0f} s")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def run(self, logs: Path) -> dict[str, float]:
        figures: dict[str, float] = {}
        async with aws.dynamodb(self.settings) as client:
            await init_db(client, self.settings)
            store = Store(client, self.settings)
            first = self.alerter(logs / "first.log")  # reads the stream while it is seeded
            total = self.seeded * self.count
            written, started = 0, time.monotonic()
            rng = random.Random(7)
            levels = [math.exp(rng.uniform(-5, 10)) for _ in self.markets]
            for i in range(self.seeded):
                t = self.newest - self.step * (self.seeded - 1 - i)
                batch = [  # prices as exchanges send them: six significant digits
                    Point(m, t, float(f"{level * (1 + rng.gauss(0, 0.002)):.6g}"), 1000.0 + i)
                    for m, level in zip(self.markets, levels, strict=True)
                ]
                await store.put_points(batch)
                written += len(batch)
                if i % max(1, self.seeded // 10) == 0:
                    print(f"  seeded {written:,}/{total:,} points", flush=True)
            figures["seed_rate"] = total / (time.monotonic() - started)
            await self.wait_fresh(store, 0.0, 3600)
            figures["rss_mb"] = rss(first.pid) / 1e6
            first.send_signal(signal.SIGTERM)
            first.wait(120)
            figures["state_mb"] = sum(f.stat().st_size for f in self.state.glob("*.state")) / 1e6

            for name in ("checkpoint", "table"):
                if name == "table":
                    for f in self.state.glob("*.state"):
                        f.unlink()
                since = time.time()
                process = self.alerter(logs / f"{name}.log")
                figures[name] = await self.wait_fresh(store, since, 1800)
                figures[f"rss_{name}_mb"] = rss(process.pid) / 1e6
                process.send_signal(signal.SIGTERM)
                process.wait(120)
        return figures


READERS = 100  # markets with a day of history for the load stage
MIXED = """-- Mixed GETs: symbols, one market's history (of {n}), rank plain and normalised, one
-- market's rank, alerts; in turn on every connection.
local symbols = {{{symbols}}}
local i = 0
request = function()
  i = i + 1
  local s = symbols[(i % #symbols) + 1]
  local paths = {{"/symbols", "/symbols/" .. s .. "/history", "/rank", "/rank?normalize=true",
    "/symbols/" .. s .. "/rank", "/alerts"}}
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


async def readers(url: str, scratch: Path) -> list[Row]:
    """Goal 5: mixed GETs with wrk (2 threads, 32 connections, 30 s), one worker and two; then
    one worker again with a user polling their 100 rules beside the load."""
    from bench.service import latency, wrk

    settings = Settings(aws_endpoint_url=url, table_prefix="readers", log_level="WARNING")
    markets = [Market("bitfinex", f"h{i:03d}usd") for i in range(READERS)]
    newest = int(time.time()) // STEP * STEP - STEP
    env = os.environ | {
        "AWS_ENDPOINT_URL": url,
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_WORKER_ID": "bench-readers",
        "TRACKER_STATE_DIR": str(scratch / "readers-state"),
        "TRACKER_LOG_LEVEL": "WARNING",
    }
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        alerter = subprocess.Popen(
            [sys.executable, "-m", "tracker", "alert"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            for i in range(1440):
                t = newest - STEP * (1439 - i)
                await store.put_points(
                    [Point(m, t, 100 + j + (i % 13) / 10, 5.0 + i) for j, m in enumerate(markets)]
                )
            print(f"  seeded {READERS * 1440:,} points", flush=True)
            key = await user_with_rules(store)
            while True:
                board = await store.get_snapshot()
                if board and board.window_end == newest and len(board.rows) == READERS:
                    break
                await asyncio.sleep(0.5)
        finally:
            alerter.send_signal(signal.SIGTERM)
            alerter.wait(60)
    script = scratch / "mixed.lua"
    script.write_text(MIXED.format(n=READERS, symbols=", ".join(f'"{m.symbol}"' for m in markets)))
    rows: list[Row] = []
    rates: dict[int, float] = {}
    polled: list[float] = []
    for workers, poll in ((1, False), (2, False), (1, True)):
        port = dynamodb_local.free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "tracker", "serve", "--workers", str(workers)],
            env=env | {"TRACKER_PORT": str(port)},
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            dynamodb_local.wait_for_port(port, 30)
            wrk(base, 5, script)  # warm: every answer once
            load = asyncio.create_task(asyncio.to_thread(wrk, base, 30, script))
            if poll:
                polled = await poll_my_rules(base, key, load)
            rate, errors, out = await load
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
        p99 = latency(out, "99")
        p99_ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-1]) * 1000
        figure = f"{rate:,.0f}; {latency(out, '50')} / {p99}; {errors}"
        meets = rate >= 1000 and p99_ms <= 100 and errors == 0
        if not poll:
            rates[workers] = rate
            rows.append(
                Row(
                    f"5. mixed GETs, {workers} worker(s): req/s; p50 / p99; errors",
                    figure,
                    "≥ 1,000 req/s, p99 ≤ 100 ms, 0 errors",
                    verdict(meets),
                )
            )
            continue
        rows.append(
            Row(
                "   2 workers / 1 worker",
                f"{rates[2] / rates[1]:.2f}×",
                "> 1×",
                verdict(rates[2] > rates[1]),
            )
        )
        steady = pct(polled, 0.99)
        rows.append(
            Row(
                f"5. GET /me/rules (100 rules) under the mixed GETs, 1 worker, p99 "
                f"(median; {len(polled)} calls)",
                f"{steady * 1000:.1f} ms ({median(polled) * 1000:.1f} ms)",
                "≤ 20 ms",
                verdict(steady <= 0.02),
            )
        )
        rows.append(
            Row(
                "   the mixed GETs beside it: req/s; p50 / p99; errors (against without)",
                f"{figure} ({rate / rates[1]:.2f}×)",
                "as without: ≥ 0.9×",
                verdict(meets and rate >= 0.9 * rates[1]),
            )
        )
    return rows


async def poll_my_rules(base: str, key: str, load: asyncio.Task[Any]) -> list[float]:
    """`GET /me/rules` as a user polls it, eight a second (within the key's rate limit),
    while `load` runs: each call's time."""
    times: list[float] = []
    await asyncio.sleep(2)  # the load under way
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while not load.done():
            at = time.perf_counter()
            answer = await http.get("/me/rules", headers={"Authorization": f"Bearer {key}"})
            times.append(time.perf_counter() - at)
            assert answer.status_code == 200 and len(answer.json()["rules"]) == 100, answer.text
            await asyncio.sleep(max(0.0, 0.125 - times[-1]))
    return times[:-8]  # the last second's: the load was ending


class Rows(list[Row]):
    """The table's rows, each also printed as soon as it is measured (a long run that fails
    late keeps what it found)."""

    def append(self, row: Row) -> None:
        print(f"  → {row.name.strip()}: {row.value} {row.verdict}", flush=True)
        super().append(row)

    def __iadd__(self, rows: Iterable[Row]) -> Rows:  # type: ignore[override,misc]
        for row in rows:
            self.append(row)
        return self


@contextlib.contextmanager
def in_memory() -> Iterator[tuple[str, Path]]:
    """An in-memory DynamoDB Local and a scratch directory, both gone afterwards."""
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            yield f"http://127.0.0.1:{port}", Path(scratch)
    finally:
        ddb.terminate()
        ddb.wait(30)


async def restarts(rows: Rows) -> None:
    """Goals 2, 3 and 4."""
    figures_of: dict[tuple[int, int], dict[str, float]] = {}
    # (rank window h, markets, tick s, hours seeded, goal): the 1-hour window at one-minute
    # ticks also gets a day of points, so both long-running alerters handle as many records
    # (and the 1-hour one has points leave its window, read back, every tick for 23 hours).
    cases = [
        (1, MARKETS, STEP, 24, 2),
        (24, MARKETS, STEP, 24, 2),
        (1, 400, 10, 1, 4),
        (24, 400, 10, 24, 4),
    ]
    for hours, markets, step, seeded, goal in cases:
        with in_memory() as (url, scratch):
            print(
                f"restart at {markets:,} markets, {hours} h window, {seeded} h of {step}-s ticks …",
                flush=True,
            )
            bench = Bench(url, hours, scratch / "state", markets, step, seeded)
            figures = figures_of[(hours, step)] = await bench.run(scratch)
        for name, how in (("checkpoint", "from its checkpoint"), ("table", "from the table")):
            rows.append(
                Row(
                    f"{goal}. restart → fresh figures, {markets:,} × {bench.points:,} pts, {how}",
                    f"{figures[name]:.1f} s",
                    f"≤ {RESTART_GOAL:.0f} s",
                    verdict(figures[name] <= RESTART_GOAL)
                    if name == "checkpoint"
                    else "(before: every restart)",
                )
            )
        rows.append(
            Row(
                f"   checkpoint file; alerter RSS: long-running, restarted ({hours} h window, "
                f"{seeded} h of {step}-s ticks)",
                f"{figures['state_mb']:.1f} MB; {figures['rss_mb']:.0f} MB, "
                f"{figures['rss_checkpoint_mb']:.0f} MB",
            )
        )
        if hours == 24:
            short, long = figures_of[(1, step)], figures_of[(24, step)]
            goal_no = 3 if step == STEP else 4
            restarted = (long["rss_checkpoint_mb"] - short["rss_checkpoint_mb"]) * 1e6 / markets
            rows.append(
                Row(
                    f"{goal_no}. memory per market, 24 h window minus 1 h, {step}-s ticks, "
                    f"{ALERT_WINDOW // 60}-min alert window: alerters restarted from checkpoints",
                    f"{restarted / 1024:.2f} KB",
                    f"≤ {BYTES_GOAL / 1024:.0f} KB beyond the alert window",
                    verdict(restarted <= BYTES_GOAL),
                )
            )
            if step == STEP:  # both handled a day of records: a like-for-like RSS
                running = (long["rss_mb"] - short["rss_mb"]) * 1e6 / markets
                rows.append(
                    Row(
                        "   the same, the long-running alerters after a day of ticks each",
                        f"{running / 1024:.2f} KB",
                        f"≤ {BYTES_GOAL / 1024:.0f} KB",
                        verdict(running <= BYTES_GOAL),
                    )
                )


async def reads(rows: Rows) -> None:
    """Goal 5."""
    with in_memory() as (url, scratch):
        print(f"mixed reads, {READERS} markets × 1,440 points …", flush=True)
        rows += await readers(url, scratch)


async def wide(rows: Rows) -> None:
    """Goal 1, on an empty table."""
    minutes = float(os.environ.get("BENCH_SCALE_MINUTES", "15"))
    with in_memory() as (url, scratch):
        print(f"{BREADTH:,} markets for {minutes:.0f} min …", flush=True)
        rows += await breadth(url, scratch, minutes)


async def wide_day(rows: Rows) -> None:
    """Goal 1, on a table holding a day (DynamoDB Local on disk: some 10 GB, under
    BENCH_SCALE_DISK or the system's temporary directory)."""
    minutes = float(os.environ.get("BENCH_SCALE_DAY_MINUTES", "5"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_SCALE_DISK")) as scratch:
        print(
            f"{BREADTH:,} markets with a day of history in the table, then {minutes:.0f} min …",
            flush=True,
        )
        rows += await breadth_day(Path(scratch), minutes)


async def users_rules(rows: Rows) -> None:
    """Users' rules at breadth: the breadth run without and with 100,000 rules."""
    from bench.rules_breadth import rules_breadth

    minutes = float(os.environ.get("BENCH_SCALE_MINUTES", "15"))
    with tempfile.TemporaryDirectory() as scratch:
        print(f"users' rules: {BREADTH:,} markets for {minutes:.0f} min, twice …", flush=True)
        rows += await rules_breadth(Path(scratch), minutes)


STAGES = {
    "restart": restarts,
    "readers": reads,
    "breadth": wide,
    "day": wide_day,
    "rules": users_rules,
}


async def run(stages: list[str]) -> list[Row]:
    rows = Rows()
    for stage in stages:
        await STAGES[stage](rows)
    rows.append(
        Row(
            "6. the dashboard at 20,000 markets",
            "tests/e2e/test_dashboard_scale.py",
            "paged, search as you type",
            "tested in make test",
        )
    )
    return rows


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    stages = os.environ.get("BENCH_SCALE_STAGES", ",".join(STAGES)).split(",")
    if unknown := set(stages) - set(STAGES):
        print(f"BENCH_SCALE_STAGES: no stage {sorted(unknown)}; stages: {', '.join(STAGES)}")
        return 2
    rows = asyncio.run(run(stages))
    print()
    print(table([Row("goal", "figure", "goal", "verdict"), *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
