"""`make bench-scale`: issue 17's goals, each beside its figure from one run on in-memory
DynamoDB Local, with real `tracker alert` processes.

Measured here: the alerter's restart to fresh figures at 1,000 markets with 1 hour and with
24 hours of one-minute history, from its state checkpoint (stream replay) and from the table
(the way every restart went before checkpoints), and its memory per market; and mixed reads
under load (wrk) against `tracker serve` with one worker and with two. Goals this version does
not measure yet are printed as such, never as met.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Row, table, verdict
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


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Bench:
    def __init__(self, url: str, hours: int, state: Path) -> None:
        self.points = hours * 3600 // STEP
        self.settings = Settings(
            aws_endpoint_url=url,
            table_prefix=f"scale{hours}h",
            rank_window=hours * 3600,
            alert_window=min(3600, hours * 1800),  # shorter than the rank window, as in use
            log_level="WARNING",
        )
        self.env = os.environ | {
            "AWS_ENDPOINT_URL": url,
            "TRACKER_TABLE_PREFIX": self.settings.table_prefix,
            "TRACKER_RANK_WINDOW": str(self.settings.rank_window),
            "TRACKER_ALERT_WINDOW": str(self.settings.alert_window),
            "TRACKER_WORKER_ID": "bench-scale",
            "TRACKER_STATE_DIR": str(state),
            "TRACKER_CHECKPOINT_INTERVAL": "86400",  # only the clean stop writes one
            "TRACKER_LOG_LEVEL": "INFO",
        }
        self.state = state
        self.markets = [Market("bitfinex", f"s{i:05d}usd") for i in range(MARKETS)]
        self.newest = int(time.time()) // STEP * STEP - STEP

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
            and len(board.rows) == MARKETS
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
            total = self.points * MARKETS
            written, started = 0, time.monotonic()
            for i in range(self.points):
                t = self.newest - STEP * (self.points - 1 - i)
                price = 100.0 + (i % 97) / 8
                batch = [
                    Point(m, t, price + j / 1000, 1000.0 + j) for j, m in enumerate(self.markets)
                ]
                await store.put_points(batch)
                written += len(batch)
                if i % max(1, self.points // 10) == 0:
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
    """Goal 5: mixed GETs with wrk (2 threads, 32 connections, 30 s), one worker and two."""
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
    for workers in (1, 2):
        port = dynamodb_local.free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "tracker", "serve", "--workers", str(workers)],
            env=env | {"TRACKER_PORT": str(port)},
            stderr=subprocess.DEVNULL,
        )
        try:
            dynamodb_local.wait_for_port(port, 30)
            wrk(f"http://127.0.0.1:{port}", 5, script)  # warm: every answer once
            rate, errors, out = wrk(f"http://127.0.0.1:{port}", 30, script)
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
        rates[workers] = rate
        p99 = latency(out, "99")
        p99_ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-1]) * 1000
        rows.append(
            Row(
                f"5. mixed GETs, {workers} worker(s): req/s; p50 / p99; errors",
                f"{rate:,.0f}; {latency(out, '50')} / {p99}; {errors}",
                "≥ 1,000 req/s, p99 ≤ 100 ms, 0 errors",
                verdict(rate >= 1000 and p99_ms <= 100 and errors == 0),
            )
        )
    rows.append(
        Row(
            "   2 workers / 1 worker",
            f"{rates[2] / rates[1]:.2f}×",
            "> 1×",
            verdict(rates[2] > rates[1]),
        )
    )
    return rows


async def run() -> list[Row]:
    rows: list[Row] = []
    memory: dict[int, float] = {}
    for hours in (1, 24):
        port = dynamodb_local.free_port()
        ddb = dynamodb_local.start(port, None)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                state, logs = Path(scratch) / "state", Path(scratch)
                print(
                    f"restart at {MARKETS:,} markets × {hours} h of 1-minute points …", flush=True
                )
                bench = Bench(f"http://127.0.0.1:{port}", hours, state)
                figures = await bench.run(logs)
        finally:
            ddb.terminate()
            ddb.wait(30)
        memory[hours] = figures["rss_mb"]
        for name, how in (("checkpoint", "from its checkpoint"), ("table", "from the table")):
            rows.append(
                Row(
                    f"2. restart → fresh figures, {MARKETS:,} × {bench.points:,} points, {how}",
                    f"{figures[name]:.1f} s",
                    f"≤ {RESTART_GOAL:.0f} s",
                    verdict(figures[name] <= RESTART_GOAL)
                    if name == "checkpoint"
                    else "(before: every restart)",
                )
            )
        rows.append(
            Row(
                f"   its checkpoint file; alerter RSS ({hours} h)",
                f"{figures['state_mb']:.1f} MB; {figures['rss_mb']:.0f} MB",
            )
        )
    per_market = (memory[24] - memory[1]) * 1e6 / MARKETS
    rows.append(
        Row(
            "3. memory per market, 24 h window minus 1 h window",
            f"{per_market / 1024:.1f} KB",
            f"≤ {BYTES_GOAL / 1024:.0f} KB beyond the alert window",
            verdict(per_market <= BYTES_GOAL),
        )
    )
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f"mixed reads, {READERS} markets × 1,440 points …", flush=True)
            rows += await readers(f"http://127.0.0.1:{port}", Path(scratch))
    finally:
        ddb.terminate()
        ddb.wait(30)
    for goal in (
        "1. 20,000 markets at one-minute ticks for 15 min",
        "4. 10-second ticks, ~400 markets, a day of history",
        "6. the dashboard at 20,000 markets",
    ):
        rows.append(Row(goal, "not measured", "", "short (not measured by this version)"))
    return rows


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    rows = asyncio.run(run())
    print()
    print(table([Row("goal", "figure", "goal", "verdict"), *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
