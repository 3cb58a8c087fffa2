"""The outage suite: what users see when parts go away. Demo exchange, fetcher, alerter and
service run as plain processes on DynamoDB Local (on disk), the workers and the service through
a fault-injecting proxy; nothing is restarted but what a scenario kills on purpose, and a
poller asks the API what a dashboard asks, four times a second, throughout:

1. DynamoDB Local down 30 s (process killed, endpoint refusing) and back, same port and data;
2. throttling, then 500s, on half the requests for 10 s each;
3. kill -9 of the fetcher while it drains a large buffer (it is restarted, as an orchestrator
   would, and resumes from its spool);
4. kill -9 of the alerter during a batch (restarted likewise);
5. the exchange down 5 minutes and back.

Each scenario spikes one market 3.5× during its fault. Afterwards: every tick fetched while a
fetcher lived is stored, once; each spike made exactly one alert of its market and nothing else
did (but its pair's, when the pair trades on that market alone); no answer was a 500 and none of
the poller's a 5xx; every process not killed is still alive; and
the figures were fresh again after each recovery. It prints the table:
fault → points lost, alerts, 5xx, seconds to fresh figures."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from common.assets import AGGREGATES, ASSETS_EXCHANGE, PAIRS_EXCHANGE, split_bitfinex
from common.db import Store
from common.models import Market
from common.settings import Settings
from common.ticks import next_tick, parse_time, tick_floor
from tests.faultproxy import fault_proxy
from tests.helpers.exchange import control
from tests.helpers.processes import TRACKER, Processes, logged, ticks_done
from tests.helpers.tables import tables
from tests.helpers.waiting import wait_for
from tracker import dynamodb_local

# A tick is every market and, beside them, a point per pair and per asset: 300 Bitfinex pairs
# and 120 Cryptowatch markets make 785 points a tick, which 3-s ticks keep within what
# DynamoDB Local takes on disk (~400 points a second; docs/operations.md).
INTERVAL = 3
EXCHANGE_DOWN = float(os.environ.get("TRACKER_TEST_EXCHANGE_OUTAGE", "300"))
POLLED = (
    "/rank",
    "/symbols",
    "/symbols/btcusd",
    "/symbols/btcusd/rank",
    "/symbols/btcusd/history",
    "/alerts",
    "/readyz",
    "/status",
)
WATCHED = [Market("bitfinex", s) for s in ("btcusd", "ethusd", "ltcusd")] + [
    Market("kraken", "ethusd")
]


@dataclass
class Scenario:
    name: str
    spike: Market
    started: float = 0.0
    ended: float = 0.0  # the fault's end (the recovery's start)
    fresh_after: float | None = None  # seconds from the end to fresh figures
    killed: list[str] = field(default_factory=list)


@dataclass
class Poller:
    """The API as a dashboard asks it, four times a second: every answer's status, kept."""

    base: str
    answers: list[tuple[float, str, int]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                for path in POLLED:
                    try:
                        async with http.get(self.base + path) as answer:
                            await answer.read()
                            self.answers.append((time.time(), path, answer.status))
                    except (aiohttp.ClientError, TimeoutError):
                        self.answers.append((time.time(), path, 0))  # no answer at all
                await asyncio.sleep(0.25)

    def failures(self, start: float, end: float, worst: int = 500) -> int:
        return sum(1 for t, _, s in self.answers if start <= t <= end and (s >= worst or s == 0))


async def rank_window_end(base: str) -> float | None:
    """The figures' newest tick; None while the service does not answer with figures."""
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/rank?limit=1") as answer:
            if answer.status != 200:
                return None
            return parse_time((await answer.json())["window_end"])
    except aiohttp.ClientError:
        return None


async def alerted(base: str, market: Market) -> bool:
    """The API lists an alert of `market`."""
    path = f"/alerts?exchange={market.exchange}&symbol={market.symbol}"
    async with aiohttp.ClientSession() as http, http.get(base + path) as answer:
        return answer.status == 200 and bool((await answer.json())["alerts"])


async def every_point(store: Store) -> dict[Market, set[int]]:
    """Every stored point's market and tick: one Scan in four segments."""

    async def segment(n: int) -> list[tuple[Market, int]]:
        pages = store.client.get_paginator("scan").paginate(
            TableName=store.points_table,
            ProjectionExpression="m, #t",
            ExpressionAttributeNames={"#t": "t"},
            Segment=n,
            TotalSegments=4,
        )
        return [
            (Market.from_key(i["m"]["S"]), int(i["t"]["N"]))
            async for page in pages
            for i in page["Items"]
        ]

    found: dict[Market, set[int]] = {}
    for part in await asyncio.gather(*(segment(n) for n in range(4))):
        for market, t in part:
            found.setdefault(market, set()).add(t)
    return found


async def fresh(base: str, since: float, within: float = 120) -> float:
    """Seconds until the figures hold a tick at or after `since`."""

    async def holds() -> bool:
        end = await rank_window_end(base)
        return end is not None and end >= tick_floor(since, INTERVAL)

    await wait_for(holds, within, f"figures fresh after {since}")
    return time.time() - since


async def exited(process: subprocess.Popen[bytes], within: float = 60) -> int:
    """Wait for a process without blocking the loop (the proxy it talks through runs here)."""
    await wait_for(lambda: process.poll() is not None, within, f"{process.args!r} exits")
    return process.returncode


@pytest.mark.timeout(1500)
async def test_outages_lose_nothing_and_no_answer_is_a_500(
    tmp_path: Path, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    port, demo_port, api_port = (dynamodb_local.free_port() for _ in range(3))
    ddb_url, demo, api = (f"http://127.0.0.1:{p}" for p in (port, demo_port, api_port))
    ddb_args = dynamodb_local.command(port, tmp_path / "ddb")
    (tmp_path / "ddb").mkdir()
    processes.start("dynamodb", ddb_args, {})
    dynamodb_local.wait_for_port(port, 60)
    demo_args = [*TRACKER, "demo-exchange", "--port", str(demo_port), "--pairs", "300"]
    processes.start("demo", demo_args, {})
    dynamodb_local.wait_for_port(demo_port)
    control(demo, "/control/volatility", {"volatility": 0.0005})
    served = sorted(r[0] for r in control(demo, "/v2/tickers?symbols=ALL"))
    spiked = [s[1:].lower() for s in served if s.startswith("t") and ":" not in s][5:10]

    async with fault_proxy(ddb_url) as proxy:
        env = {
            "AWS_ENDPOINT_URL": proxy.url,
            "TRACKER_TABLE_PREFIX": "outages",
            "TRACKER_SOURCES": "bitfinex,cryptowatch",
            "TRACKER_BITFINEX_URL": demo,
            "TRACKER_CRYPTOWATCH_URL": demo,
            "TRACKER_FETCH_INTERVAL": str(INTERVAL),
            "TRACKER_FETCH_TIMEOUT": "1",
            "TRACKER_RANK_WINDOW": "600",
            "TRACKER_ALERT_WINDOW": "30",
            "TRACKER_ALERT_COOLDOWN": "3600",
            "TRACKER_WORKER_ID": "outages",
            "TRACKER_SPOOL_DIR": str(tmp_path / "spool"),
            "TRACKER_PORT": str(api_port),
        }
        assert await exited(processes.start("init", [*TRACKER, "init-db"], env)) == 0
        for name, command in (("fetcher", "fetch"), ("alerter", "alert"), ("service", "serve")):
            processes.start(name, [*TRACKER, command], env)
        began = time.time()
        await fresh(api, began + 6 * INTERVAL)  # a full alert window (5 points needed)
        poller = Poller(api)
        poller.task = asyncio.create_task(poller.run())
        await wait_for(  # a dashboard has asked its questions before a fault
            lambda: {path for _, path, _ in poller.answers} >= set(POLLED), 30, "every path polled"
        )
        scenarios = [
            Scenario(name, Market("bitfinex", symbol))
            for name, symbol in zip(
                (
                    "DynamoDB down 30 s",
                    "throttling, then 5xx (50%)",
                    "kill -9 fetcher mid-drain",
                    "kill -9 alerter mid-batch",
                    f"exchange down {EXCHANGE_DOWN:.0f} s",
                ),
                spiked,
                strict=True,
            )
        ]

        def spike(scenario: Scenario) -> None:
            control(demo, "/control/price", {"symbol": scenario.spike.symbol, "factor": 3.5})

        def alive(*but: str) -> None:
            for name, process in processes.running.items():
                if name not in but and name != "init":
                    assert process.poll() is None, (name, processes.log(name)[-3000:])

        # 1. DynamoDB away for 30 s.
        s = scenarios[0]
        s.started = time.time()
        await proxy.down()
        processes.kill("dynamodb")
        await asyncio.sleep(4)  # the outage's own length: 4 s, the spike, 26 s
        spike(s)
        await asyncio.sleep(26)
        processes.start("dynamodb'", ddb_args, {})
        await asyncio.to_thread(dynamodb_local.wait_for_port, port, 60)
        await proxy.up()
        s.ended = time.time()
        s.fresh_after = await fresh(api, s.ended)
        alive()

        # 2. Throttling, then 500s, on half the requests.
        s = scenarios[1]
        s.started = time.time()
        proxy.inject("throttle", 0.5)
        await asyncio.sleep(5)  # the faults' own lengths: 10 s each, the spike halfway
        spike(s)
        await asyncio.sleep(5)
        proxy.inject("error", 0.5)
        await asyncio.sleep(10)
        proxy.inject(None)
        s.ended = time.time()
        s.fresh_after = await fresh(api, s.ended)
        alive()

        # 3. A large buffer (20 s of DynamoDB away), the fetcher killed while draining it.
        s = scenarios[2]
        s.started = time.time()
        await proxy.down()
        await asyncio.sleep(4)  # the outage's own length: 4 s, the spike, 16 s
        spike(s)
        await asyncio.sleep(16)
        await proxy.up()
        drained = len(re.findall(r"wrote buffered", processes.log("fetcher")))
        await logged(processes, "fetcher", r"wrote buffered", within=60, after=drained)
        processes.kill("fetcher")
        fetcher_killed = time.time()
        s.killed.append("fetcher")
        processes.start("fetcher'", [*TRACKER, "fetch"], env)
        resumed = await logged(processes, "fetcher'", r"resuming \d+ point\(s\)", within=60)
        s.ended = time.time()
        s.fresh_after = await fresh(api, s.ended)
        alive()

        # 4. The alerter killed during a batch: a tick's writes are under way.
        s = scenarios[3]
        s.started = time.time()
        spike(s)
        await asyncio.sleep(next_tick(time.time(), INTERVAL) + 0.3 - time.time())  # the kill's time
        processes.kill("alerter")
        s.killed.append("alerter")
        processes.start("alerter'", [*TRACKER, "alert"], env)
        s.ended = time.time()
        s.fresh_after = await fresh(api, s.ended)
        alive()

        # 5. The exchange away for five minutes.
        s = scenarios[4]
        s.started = time.time()
        processes.kill("demo")
        await asyncio.sleep(EXCHANGE_DOWN)
        processes.start("demo'", demo_args, {})
        await asyncio.to_thread(dynamodb_local.wait_for_port, demo_port)
        control(demo, "/control/volatility", {"volatility": 0.0005})
        s.ended = time.time()
        s.fresh_after = await fresh(api, s.ended)
        # A full alert window again (5 points), then the spike.
        await wait_for(
            lambda: sum(t > s.ended for t in ticks_done(processes.log("fetcher'"))) >= 6,
            60,
            "six ticks since the exchange came back",
        )
        spike(s)
        spiked_at = time.time()
        alive()

        # The last spike's alert, and the figures past it: every spike has had its chance.
        await wait_for(lambda: alerted(api, s.spike), 60, "the last spike's alert", processes.tails)
        await fresh(api, spiked_at + 2 * INTERVAL)
        poller.task.cancel()
        ended = time.time()
        for name in ("fetcher'", "alerter'", "service"):
            process = processes.running.pop(name)
            process.send_signal(signal.SIGTERM)
            assert await exited(process, 40) == 0, processes.log(name)[-3000:]

    settings = Settings(aws_endpoint_url=ddb_url, table_prefix="outages")
    async with tables(settings, create=False) as store:
        alerts = await store.list_alerts(limit=1000)
        stored = await every_point(store)
    # Every tick due while a fetcher lived and the exchange answered, for every market (and
    # every pair and asset figure), read back from the table: not the ticks the fetcher says
    # it did. No fetcher lived from the kill to the restarted one's first tick; the exchange
    # answered nothing from its kill until it was back.
    restarted = min(ticks_done(processes.log("fetcher'")))
    away = scenarios[4]

    def due(t: int) -> bool:
        no_fetcher = fetcher_killed - INTERVAL < t < restarted
        no_exchange = away.started - INTERVAL < t <= away.ended
        return not (no_fetcher or no_exchange)

    # From the first fetcher's first tick to the last one surely done before the SIGTERM.
    first, last = min(ticks_done(processes.log("fetcher"))), tick_floor(ended, INTERVAL) - INTERVAL
    wanted = [t for t in range(first, last + 1, INTERVAL) if due(t)]
    every = {m for m, ticks in stored.items() if ticks & set(wanted)}
    missing = {(m, t) for m in every for t in wanted if t not in stored[m]}
    assert len(every) > 700, len(every)  # 300 + 120 markets, their pairs and assets

    rows: list[tuple[str, int, str, int, str]] = []
    for s in scenarios:
        lost = sum(1 for _, t in missing if s.started - INTERVAL <= t <= s.ended)
        got = sum(1 for a in alerts if a.market == s.spike)
        rows.append(
            (
                s.name,
                lost,
                f"{got}/1",
                poller.failures(s.started, s.ended + (s.fresh_after or 0), worst=500),
                f"{s.fresh_after:.1f}" if s.fresh_after is not None else "-",
            )
        )
    with capsys.disabled():  # the table is for whoever runs `make test`
        print("\nfault                          points lost  alerts  5xx  fresh after (s)")
        for name, lost, alerts_seen, errors, after in rows:
            print(f"{name:<30} {lost:>11}  {alerts_seen:>6}  {errors:>3}  {after:>15}")
        print(f"{resumed} (the restarted fetcher); proxy injected {dict(proxy.injected)}")

    assert missing == set(), (rows, sorted(missing)[:20])
    markets = [a for a in alerts if a.market.exchange not in AGGREGATES]
    assert sorted(a.market.symbol for a in markets) == sorted(s.spike.symbol for s in scenarios)
    # A spiked market whose pair trades on Bitfinex alone (aptbtc) moves its pair with it, and
    # the house rule sees that too: once, and for nothing but a spiked market's pair or asset.
    splits = [split_bitfinex(s.spike.symbol) for s in scenarios]
    followers = {Market(PAIRS_EXCHANGE, x.pair) for x in splits if x}
    followers |= {Market(ASSETS_EXCHANGE, x.base) for x in splits if x}
    aggregates = [a.market for a in alerts if a.market.exchange in AGGREGATES]
    assert set(aggregates) <= followers and len(aggregates) == len(set(aggregates)), aggregates
    assert not any(status == 500 for _, _, status in poller.answers)
    assert poller.failures(began, ended) == 0, [a for a in poller.answers if a[2] >= 500]
    assert proxy.injected["throttle"] and proxy.injected["error"]
    log = processes.log("fetcher") + processes.log("alerter")
    assert "DynamoDB unavailable" in log and "answering again after an outage" in log
