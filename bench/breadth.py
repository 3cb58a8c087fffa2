"""Goal 1 of `make bench-scale`: the demo exchange serving 20,000 markets in Cryptowatch's
format; fetcher, alerter and service running at one-minute ticks. Each tick: when a sample of
its points is queryable, when the service's board shows them, and how long two spiked markets
take from their write to the webhook; the three processes' RSS throughout.

Run twice: on an empty table with short windows (from the 11th tick points leave the rank window
and are read back, for all 20,000 markets, every tick), and on a table holding a full day of
history (28.8 M points, loaded by bench/history.py) with the default 24-hour window, which the
alerter reads market by market on first sight before the ticks are timed."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.history import Day, load, write_anchors
from bench.report import Row, pct, verdict
from common import aws
from common.db import Store
from common.errors import StoreUnavailable
from common.models import Market
from common.schema import init_db
from common.settings import Settings
from tracker import dynamodb_local

BREADTH = 20_000  # Cryptowatch-format markets (the whole Cryptowatch universe was ~14,500)
RANK_WINDOW, ALERT_WINDOW = 600, 300  # the empty-table run: windows a short run fills
SAMPLE = 40  # markets polled each tick to time when it is queryable and on the board
STEP = 60
DAY_LIMIT = 3600  # seconds the alerter may take to read the day before the run fails


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def p99(values: list[float]) -> float:
    return pct(values, 0.99) if values else float("nan")


@dataclass
class Seen:
    """What the timed ticks showed."""

    ticks: int
    missed: int = 0
    queryable: list[float] = field(default_factory=list)  # seconds after the tick's start
    on_board: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)  # on the board − queryable, same tick
    latencies: list[float] = field(default_factory=list)  # write → webhook
    expected: int = 0  # spikes written, each of which must alert
    rss_peak: int = 0
    user_latencies: list[float] = field(default_factory=list)  # write → a user's webhook


class Breadth:
    """The demo exchange, fetcher, alerter and service on one table, as plain processes."""

    def __init__(self, url: str, scratch: Path, prefix: str, rank: int, alert: int) -> None:
        self.settings = Settings(aws_endpoint_url=url, table_prefix=prefix, log_level="WARNING")
        self.scratch = scratch
        self.demo_port, self.api_port = dynamodb_local.free_port(), dynamodb_local.free_port()
        self.demo = f"http://127.0.0.1:{self.demo_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.env = os.environ | {
            "AWS_ENDPOINT_URL": url,
            "TRACKER_TABLE_PREFIX": prefix,
            "TRACKER_SOURCES": "cryptowatch",
            "TRACKER_CRYPTOWATCH_URL": self.demo,
            "TRACKER_ALERT_MIN_POINTS": "3",  # alerts from the fourth tick of a short run
            "TRACKER_RANK_WINDOW": str(rank),
            "TRACKER_ALERT_WINDOW": str(alert),
            "TRACKER_PORT": str(self.api_port),
            "TRACKER_WORKER_ID": f"bench-{prefix}",
            "TRACKER_STATE_DIR": str(scratch / f"{prefix}-state"),
            "TRACKER_SPOOL_DIR": str(scratch / f"{prefix}-spool"),
            "TRACKER_LOG_LEVEL": "INFO",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.received: dict[str, float] = {}  # market key → when its alert reached the webhook
        self.users: dict[str, float] | None = None  # the same for users' webhooks, if timed

    def on_post(self, body: dict[str, Any]) -> None:
        if body.get("type") == "alert":  # a user's webhook (common/messages.py)
            alert = body["alert"]
            if self.users is not None:
                self.users.setdefault(f"{alert['exchange']}:{alert['symbol']}", time.time())
            return
        # alerter/notify.py titles a market's alert "<exchange> <SYMBOL>: price …" (a pair's
        # or an asset's otherwise: not the markets timed here)
        words = body["title"].split(":")[0].split()
        if len(words) == 2:
            exchange, symbol = words
            self.received.setdefault(f"{exchange}:{symbol.lower()}", time.time())

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> None:
        with open(self.scratch / f"{self.settings.table_prefix}-{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "tracker", *command],
                env=self.env | (env or {}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_demo(self) -> dict[str, float]:
        """The demo exchange; returns its markets' keys and prices."""
        self.start(
            "demo",
            "demo-exchange",
            *("--port", str(self.demo_port), "--pairs", "1"),
            *("--cryptowatch-markets", str(BREADTH)),
        )
        dynamodb_local.wait_for_port(self.demo_port, 60)
        post(self.demo + "/control/volatility", {"volatility": 0.0005})
        prices = get_json(self.demo + "/markets/prices")["result"]
        return {
            k.removeprefix("market:"): float(price)
            for k, price in prices.items()
            if not k.startswith("index:")
        }

    def start_workers(self, hook: str) -> None:
        """Fetcher, alerter, service, and the delivery worker: the house rule's alerts reach
        `hook` through it, as every alert leaves the tracker."""
        self.env["TRACKER_NOTIFY_URLS"] = hook
        self.start("fetcher", "fetch")
        self.start("alerter", "alert")
        self.start("notifier", "deliver")
        self.start("service", "serve")

    def rss(self) -> int:
        return sum(rss(p.pid) for name, p in self.processes.items() if name != "demo")

    def tails(self, lines: int = 15) -> None:
        """The end of each process's log (the logs go with the scratch directory)."""
        for name in self.processes:
            log = self.scratch / f"{self.settings.table_prefix}-{name}.log"
            print(
                f"  --- {name}:", *log.read_text(errors="replace").splitlines()[-lines:], sep="\n"
            )

    def stop(self) -> None:
        """Whatever happened, no process outlives the run."""
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()

    async def ticks(
        self,
        store: Store,
        markets: list[str],
        minutes: float,
        on_tick: Callable[[int], Awaitable[None]] | None = None,
    ) -> Seen:
        """Time `minutes` of ticks, from the second whole tick from now (`on_tick`: called
        with each tick's number as it starts)."""
        rng = random.Random(5)
        first = (int(time.time()) // STEP + 2) * STEP
        ticks = [first + STEP * i for i in range(int(minutes * 60 / STEP))]
        seen = Seen(len(ticks), rss_peak=self.rss())
        spiked: dict[str, int] = {}  # market key → the tick it was spiked at
        print(
            f"  {len(markets):,} markets; ticks from {time.strftime('%H:%M', time.gmtime(first))}"
        )
        for n, tick in enumerate(ticks):
            await asyncio.sleep(max(0.0, tick - 20 - time.time()))
            if n >= 3:  # enough points in the window for a verdict
                for key in rng.sample(markets, 2):
                    exchange, symbol = key.split(":")
                    post(
                        self.demo + "/control/price",
                        {"exchange": exchange, "symbol": symbol, "factor": 4},
                    )
                    spiked[key] = tick
            sample = [Market.from_key(k) for k in rng.sample(markets, SAMPLE)]
            sample += [Market.from_key(k) for k, t in spiked.items() if t == tick]
            await asyncio.sleep(max(0.0, tick - time.time()))
            if on_tick is not None:
                await on_tick(n)
            written: dict[Market, float] = {}
            while len(written) < len(sample) and time.time() < tick + STEP:
                for market in sample:
                    if market not in written and await store.get_point(market, tick):
                        written[market] = time.time()
                await asyncio.sleep(0.1)
            if len(written) < len(sample):
                seen.missed += 1
                continue
            seen.queryable.append(max(written.values()) - tick)
            for key, t in spiked.items():
                if t == tick:
                    seen.expected += 1
                    market = Market.from_key(key)
                    while key not in self.received and time.time() < written[market] + 15:
                        await asyncio.sleep(0.05)
                    if key in self.received:
                        seen.latencies.append(self.received[key] - written[market])
                    users = self.users
                    if users is not None:
                        while key not in users and time.time() < written[market] + 15:
                            await asyncio.sleep(0.05)
                        if key in users:
                            seen.user_latencies.append(users[key] - written[market])
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tick))
            shown = set[Market]()
            while len(shown) < SAMPLE and time.time() < tick + STEP:
                for market in sample[:SAMPLE]:
                    if market not in shown:
                        row = get_json(
                            f"{self.api}/symbols/{market.symbol}?exchange={market.exchange}"
                        )
                        if row["time"] == stamp:
                            shown.add(market)
                await asyncio.sleep(0.2)
            if len(shown) == SAMPLE:
                seen.on_board.append(time.time() - tick)
                seen.lag.append(seen.on_board[-1] - seen.queryable[-1])
            else:
                late = [m.key for m in sample[:SAMPLE] if m not in shown]
                print(f"  tick {n + 1}: not on the board within the tick: {late[:5]}")
            seen.rss_peak = max(seen.rss_peak, self.rss())
            board = seen.on_board[-1] if len(shown) == SAMPLE else float("nan")
            print(
                f"  tick {n + 1}/{len(ticks)}: queryable {seen.queryable[-1]:.1f} s, "
                f"on the board {board:.1f} s, RSS {seen.rss_peak / 1e6:.0f} MB",
                flush=True,
            )
        return seen


def timed_rows(seen: Seen, judged: bool = True) -> list[Row]:
    """The goal-1 rows of a timed run (the caller names the run in the first); `judged`:
    with the goals and verdicts, else the figures alone."""

    def row(name: str, figure: str, goal: str, ok: bool) -> Row:
        return Row(name, figure, goal, verdict(ok)) if judged else Row(name, figure)

    on_board = max(seen.on_board, default=float("nan"))
    return [
        row("   missed ticks", str(seen.missed), "0", seen.missed == 0),
        row(
            "   tick queryable after its start, p99",
            f"{p99(seen.queryable):.1f} s",
            "≤ 20 s",
            p99(seen.queryable) <= 20,
        ),
        row(
            "   stream lag (board shows it − queryable), p99",
            f"{p99(seen.lag):.1f} s",
            "≤ 10 s",
            p99(seen.lag) <= 10,
        ),
        row(
            f"   write → alert p99 ({len(seen.latencies)}/{seen.expected} spikes alerted)",
            f"{p99(seen.latencies):.1f} s",
            "≤ 5 s, every spike",
            bool(seen.latencies)
            and len(seen.latencies) == seen.expected
            and p99(seen.latencies) <= 5,
        ),
        row(
            f"   /rank fresh (board shows the tick) after its start, max "
            f"({len(seen.on_board)}/{seen.ticks} ticks within it)",
            f"{on_board:.1f} s",
            "within the tick (< 60 s)",
            len(seen.on_board) == seen.ticks and on_board < STEP,
        ),
        row(
            "   RSS of fetcher + alerter + service + delivery worker, peak",
            f"{seen.rss_peak / 1e6:.0f} MB",
            "≤ 1 GB",
            seen.rss_peak <= 1e9,
        ),
    ]


async def breadth(url: str, scratch: Path, minutes: float) -> list[Row]:
    """On an empty table, windows short enough for a short run to reach the steady state of a
    long one: from the 6th tick points are sealed, from the 11th they leave the rank window and
    are read back, every tick, for all 20,000 markets."""
    from demo.webhook import receiving

    run = Breadth(url, scratch, "breadth", RANK_WINDOW, ALERT_WINDOW)
    async with receiving(run.on_post) as hook, aws.dynamodb(run.settings) as client:
        await init_db(client, run.settings)
        try:
            markets = list(run.start_demo())
            run.start_workers(hook)
            seen = await run.ticks(Store(client, run.settings), markets, minutes)
        finally:
            run.stop()
    return [
        Row(
            f"1. {len(markets):,} markets, {seen.ticks} one-minute ticks, "
            f"{RANK_WINDOW // 60}-min rank window (points leave it, read back, from "
            f"tick {RANK_WINDOW // STEP + 1}), an empty table to start"
        ),
        *timed_rows(seen),
    ]


async def complete(run: Breadth, store: Store, day: Day) -> tuple[float, int]:
    """Wait until the board ranks every market with every loaded point still in its window
    counted: (seconds it took, peak RSS meanwhile)."""
    markets = len(day.markets)
    started = time.monotonic()
    peak = 0
    reported = 0.0
    while True:
        peak = max(peak, run.rss())
        try:
            board = await store.get_snapshot()
        except StoreUnavailable as exc:  # DynamoDB Local busy with the day's reading
            print(f"  board not read ({exc}); again", flush=True)
            board = None
        if board is not None:
            loaded = sum(1 for t in day.ticks if t > board.window_end - 86400)
            counted = sum(1 for r in board.rows if r.stats["price"].count >= loaded)
            if counted == markets:
                return time.monotonic() - started, peak
        else:
            counted = 0
        elapsed = time.monotonic() - started
        if elapsed > DAY_LIMIT:
            raise TimeoutError(f"{counted:,}/{markets:,} markets ranked after {elapsed:.0f} s")
        if elapsed - reported >= 60:
            reported = elapsed
            print(
                f"  {elapsed:.0f} s: {counted:,}/{markets:,} markets ranked with their day, "
                f"RSS {peak / 1e6:.0f} MB",
                flush=True,
            )
        await asyncio.sleep(5)


async def breadth_day(scratch: Path, minutes: float) -> list[Row]:
    """On a table holding a full day of one-minute history for every market (28.8 M points),
    with the default windows (24 h rank, 1 h alert): the day is loaded, the three processes
    start (the alerter reads each market's day on its first record), and once every market
    is ranked with its day the ticks are timed."""
    from demo.webhook import receiving

    data = scratch / "dynamodb"
    port = dynamodb_local.free_port()
    url = f"http://127.0.0.1:{port}"
    run = Breadth(url, scratch, "day", 86400, 3600)
    ddb = dynamodb_local.start(port, data)
    try:
        dynamodb_local.wait_for_port(port, 60)
        async with receiving(run.on_post) as hook:
            prices = run.start_demo()
            markets = list(prices)
            # The day's prices around what the exchange serves now: its ticks continue them.
            levels = {Market.from_key(k): price for k, price in prices.items()}
            day = Day(levels, int(time.time()) // STEP * STEP)
            async with aws.dynamodb(run.settings) as client:
                await init_db(client, run.settings)
                anchors = await write_anchors(Store(client, run.settings), day)
            ddb.terminate()
            ddb.wait(60)
            print(f"  {anchors:,} points written through the API; loading the rest …", flush=True)
            started = time.monotonic()
            loaded = load(
                data / "shared-local-instance.db",
                f"{run.settings.table_prefix}-points",
                day,
                run.settings.retention,
            )
            took = time.monotonic() - started
            size = (data / "shared-local-instance.db").stat().st_size
            print(f"  {loaded:,} points loaded in {took:.0f} s", flush=True)
            ddb = dynamodb_local.start(port, data)
            dynamodb_local.wait_for_port(port, 120)
            async with aws.dynamodb(run.settings) as client:
                store = Store(client, run.settings)
                for i in random.Random(17).sample(range(len(day.markets)), 20):
                    found = await store.query_points(day.markets[i], 0, day.ticks[-1])
                    if found != day.series(i):
                        raise RuntimeError(f"{day.markets[i].key}: the table is not the day")
                try:
                    run.start_workers(hook)
                    warm, warm_peak = await complete(run, store, day)
                    print(f"  every market ranked with its day after {warm:.0f} s", flush=True)
                    seen = await run.ticks(store, markets, minutes)
                except BaseException:
                    run.tails()
                    raise
                finally:
                    run.stop()
    finally:
        ddb.terminate()
        ddb.wait(60)
    peak = max(warm_peak, seen.rss_peak)
    return [
        Row(
            f"1. the same with a full day of history in the table ({len(day):,} points, "
            f"24-h rank window): RSS peak, the day's first reading included",
            f"{peak / 1e6:.0f} MB",
            "≤ 1 GB",
            verdict(peak <= 1e9),
        ),
        Row(
            f"   first reading of the day: every market ranked with its {len(day.ticks):,} "
            "points (one Query each, on first sight)",
            f"{warm:.0f} s",
        ),
        Row(
            f"   then {seen.ticks} one-minute ticks on it (the time goals are the empty "
            f"table's, above; here DynamoDB Local writes into a {size / 1e9:.1f} GB file):"
        ),
        *timed_rows(seen, judged=False)[:-1],
    ]
