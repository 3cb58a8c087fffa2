"""`make bench-scale`: issue 17's goals, each beside its figure from one run on in-memory
DynamoDB Local, with real `tracker alert` processes.

Measured here: the alerter's restart to fresh figures at 1,000 markets with a 1-hour and a
24-hour window of one-minute ticks, and at 400 markets of 10-second ticks, from its state
checkpoint (stream replay) and from the table (the way every restart went before
checkpoints); its memory per market, 24-hour window against 1-hour, both after a day of ticks;
mixed reads under load (wrk) against `tracker serve` with one worker and with two; and 20,000
markets at one-minute ticks with fetcher, alerter and service running. Goals this version does
not measure are printed as such, never as met.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.report import Row, pct, table, verdict
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


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


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


BREADTH = 20_000  # Cryptowatch-format markets in the breadth run (goal 1)
BREADTH_RANK_WINDOW, BREADTH_ALERT_WINDOW = 600, 300
SAMPLE = 40  # markets polled each tick to time when it is queryable and on the board


def post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


async def breadth(url: str, scratch: Path, minutes: float) -> list[Row]:
    """Goal 1: the demo exchange serving 20,000 markets in Cryptowatch's format; fetcher,
    alerter and service running for `minutes` at one-minute ticks. Each tick: when a sample
    of its points is queryable, when the service's board shows them, and how long two
    spiked markets take from their write to the webhook."""
    from demo.webhook import receiving

    rng = random.Random(5)
    settings = Settings(aws_endpoint_url=url, table_prefix="breadth", log_level="WARNING")
    demo_port, api_port = dynamodb_local.free_port(), dynamodb_local.free_port()
    demo, api = f"http://127.0.0.1:{demo_port}", f"http://127.0.0.1:{api_port}"
    received: dict[str, float] = {}

    def on_post(body: dict[str, Any]) -> None:
        # alerter/notify.py titles an alert "<exchange> <SYMBOL>: price …"
        exchange, symbol = body["title"].split(":")[0].split()
        received.setdefault(f"{exchange}:{symbol.lower()}", time.time())

    spiked: dict[str, int] = {}  # market key → the tick it was spiked at
    async with receiving(on_post) as hook, aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        env = os.environ | {
            "AWS_ENDPOINT_URL": url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_SOURCES": "cryptowatch",
            "TRACKER_CRYPTOWATCH_URL": demo,
            "TRACKER_ALERT_MIN_POINTS": "3",  # alerts from the fourth tick of a short run
            # Windows short enough for a short run to reach the steady state of a long one:
            # from the 7th tick points are sealed, from the 11th they leave the rank window
            # and are read back, every tick, for all 20,000 markets.
            "TRACKER_RANK_WINDOW": str(BREADTH_RANK_WINDOW),
            "TRACKER_ALERT_WINDOW": str(BREADTH_ALERT_WINDOW),
            "TRACKER_NOTIFY_URLS": hook,
            "TRACKER_PORT": str(api_port),
            "TRACKER_WORKER_ID": "bench-breadth",
            "TRACKER_STATE_DIR": str(scratch / "breadth-state"),
            "TRACKER_SPOOL_DIR": str(scratch / "breadth-spool"),
            "TRACKER_LOG_LEVEL": "INFO",
        }
        names = ("demo", "fetcher", "alerter", "service")
        demo_args = ["--port", str(demo_port), "--pairs", "1"]
        commands = (
            ["demo-exchange", *demo_args, "--cryptowatch-markets", str(BREADTH)],
            ["fetch"],
            ["alert"],
            ["serve"],
        )
        processes: dict[str, subprocess.Popen[bytes]] = {}
        for name, command in zip(names, commands, strict=True):
            with open(scratch / f"{name}.log", "ab") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "tracker", *command],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if name == "demo":
                dynamodb_local.wait_for_port(demo_port, 60)
                post(demo + "/control/volatility", {"volatility": 0.0005})
        try:
            markets = [
                k.removeprefix("market:") for k in get_json(demo + "/markets/prices")["result"]
            ]
            markets = [m for m in markets if not m.startswith("index:")]
            queryable: list[float] = []
            on_board: list[float] = []
            missed = 0
            rss_peak = 0
            latencies: list[float] = []
            expected = 0  # spikes written, each of which must alert
            first = (int(time.time()) // STEP + 2) * STEP  # the first whole tick after warming up
            ticks = [first + STEP * i for i in range(int(minutes * 60 / STEP))]
            start = time.strftime("%H:%M", time.gmtime(first))
            print(f"  {len(markets):,} markets; ticks from {start}")
            for n, tick in enumerate(ticks):
                await asyncio.sleep(max(0.0, tick - 20 - time.time()))
                if n >= 3:  # enough points in the window for a verdict
                    for key in rng.sample(markets, 2):
                        exchange, symbol = key.split(":")
                        post(
                            demo + "/control/price",
                            {"exchange": exchange, "symbol": symbol, "factor": 4},
                        )
                        spiked[key] = tick
                sample = [Market.from_key(k) for k in rng.sample(markets, SAMPLE)]
                sample += [Market.from_key(k) for k, t in spiked.items() if t == tick]
                await asyncio.sleep(max(0.0, tick - time.time()))
                written: dict[Market, float] = {}
                while len(written) < len(sample) and time.time() < tick + STEP:
                    for market in sample:
                        if market not in written and await store.get_point(market, tick):
                            written[market] = time.time()
                    await asyncio.sleep(0.1)
                if len(written) < len(sample):
                    missed += 1
                    continue
                queryable.append(max(written.values()) - tick)
                for key, t in spiked.items():
                    if t == tick:
                        expected += 1
                        market = Market.from_key(key)
                        while key not in received and time.time() < written[market] + 15:
                            await asyncio.sleep(0.05)
                        if key in received:
                            latencies.append(received[key] - written[market])
                shown = set[Market]()
                while len(shown) < SAMPLE and time.time() < tick + STEP:
                    for market in sample[:SAMPLE]:
                        if market not in shown:
                            row = get_json(
                                f"{api}/symbols/{market.symbol}?exchange={market.exchange}"
                            )
                            if row["time"] == time.strftime(
                                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(tick)
                            ):
                                shown.add(market)
                    await asyncio.sleep(0.2)
                if len(shown) == SAMPLE:
                    on_board.append(time.time() - tick)
                else:
                    late = [m.key for m in sample[:SAMPLE] if m not in shown]
                    print(f"  tick {n + 1}: not on the board within the tick: {late[:5]}")
                rss_peak = max(
                    rss_peak, sum(rss(p.pid) for k, p in processes.items() if k != "demo")
                )
                print(
                    f"  tick {n + 1}/{len(ticks)}: queryable {queryable[-1]:.1f} s, "
                    f"on the board {on_board[-1] if len(shown) == SAMPLE else float('nan'):.1f} s, "
                    f"RSS {rss_peak / 1e6:.0f} MB",
                    flush=True,
                )
        finally:  # whatever happened, no process outlives the run
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()

    def p99(values: list[float]) -> float:
        return pct(values, 0.99) if values else float("nan")

    lag = [b - q for b, q in zip(on_board, queryable, strict=False)]
    return [
        Row(
            f"1. {len(markets):,} markets, {len(ticks)} one-minute ticks, "
            f"{BREADTH_RANK_WINDOW // 60}-min rank window (points leave it, read back, from "
            f"tick {BREADTH_RANK_WINDOW // STEP + 1}): missed ticks",
            str(missed),
            "0",
            verdict(missed == 0),
        ),
        Row(
            "   tick queryable after its start, p99",
            f"{p99(queryable):.1f} s",
            "≤ 20 s",
            verdict(p99(queryable) <= 20),
        ),
        Row(
            "   stream lag (board shows it − queryable), p99",
            f"{p99(lag):.1f} s",
            "≤ 10 s",
            verdict(p99(lag) <= 10),
        ),
        Row(
            f"   write → alert p99 ({len(latencies)}/{expected} spikes alerted)",
            f"{p99(latencies):.1f} s",
            "≤ 5 s, every spike",
            verdict(bool(latencies) and len(latencies) == expected and p99(latencies) <= 5),
        ),
        Row(
            "   /rank fresh (board shows the tick) after its start, max",
            f"{max(on_board, default=float('nan')):.1f} s",
            "within the tick (< 60 s)",
            verdict(len(on_board) == len(ticks) and max(on_board) < STEP),
        ),
        Row(
            "   RSS of fetcher + alerter + service, peak",
            f"{rss_peak / 1e6:.0f} MB",
            "≤ 1 GB",
            verdict(rss_peak <= 1e9),
        ),
        Row(
            "   the same with a full day of history in the table",
            "not measured",
            "≤ 1 GB",
            "short (28.8 M points: hours to seed here)",
        ),
    ]


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


async def run() -> list[Row]:
    rows = Rows()
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
        port = dynamodb_local.free_port()
        ddb = dynamodb_local.start(port, None)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                state, logs = Path(scratch) / "state", Path(scratch)
                print(
                    f"restart at {markets:,} markets, {hours} h window, {seeded} h of "
                    f"{step}-s ticks …",
                    flush=True,
                )
                bench = Bench(f"http://127.0.0.1:{port}", hours, state, markets, step, seeded)
                figures = figures_of[(hours, step)] = await bench.run(logs)
        finally:
            ddb.terminate()
            ddb.wait(30)
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
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f"mixed reads, {READERS} markets × 1,440 points …", flush=True)
            rows += await readers(f"http://127.0.0.1:{port}", Path(scratch))
    finally:
        ddb.terminate()
        ddb.wait(30)
    minutes = float(os.environ.get("BENCH_SCALE_MINUTES", "15"))
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f"{BREADTH:,} markets for {minutes:.0f} min …", flush=True)
            rows += await breadth(f"http://127.0.0.1:{port}", Path(scratch), minutes)
    finally:
        ddb.terminate()
        ddb.wait(30)
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
    rows = asyncio.run(run())
    print()
    print(table([Row("goal", "figure", "goal", "verdict"), *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
