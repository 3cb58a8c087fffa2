"""Backfill on DynamoDB Local + the demo exchange's candles: gaps filled with the values a naive
reading of the candles gives, nothing stored overwritten or duplicated, a rerun writes nothing,
and rank afterwards equals statistics.stdev over the stored points."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

import aiohttp

from common import aws
from common.db import Store
from common.models import Market, Point
from common.schema import init_db
from common.ticks import tick_floor
from fetcher.backfill import Backfill, Candle, parse_candles
from fetcher.sources import build_sources
from fetcher.worker import Fetcher
from tests.backfill_reference import naive
from tests.helpers.running import published, running_demo, stack
from tests.helpers.tables import make_settings
from tests.helpers.waiting import wait_for

HOURS = 6
BTC, ETH, LTC = (Market("bitfinex", s) for s in ("btcusd", "ethusd", "ltcusd"))


async def served_candles(base: str, market: Market, start: int, end: int) -> list[Candle]:
    url = (
        f"{base}/v2/candles/trade:1m:t{market.symbol.upper()}/hist"
        f"?start={start * 1000}&end={end * 1000}&limit=10000&sort=1"
    )
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return parse_candles(await response.json())


async def test_backfill_fills_gaps_exactly_and_rank_follows(dynamodb_url: str) -> None:
    now = tick_floor(time.time(), 60)
    start = now - HOURS * 3600
    ticks = list(range(start + 60, now + 1, 60))
    # BTC: every tick but a 40-minute hole and every 7th tick; ETH: only the last hour;
    # LTC: nothing stored (a market the fetcher never saw).
    hole = set(ticks[100:140]) | set(ticks[::7])
    async with running_demo() as (exchange, base):
        settings = make_settings(
            dynamodb_url, fetch_interval=60, rank_window=HOURS * 3600, bitfinex_url=base
        )
        candles = {m: await served_candles(base, m, start - 86400, now) for m in (BTC, ETH, LTC)}

        def fetched(market: Market, t: int) -> Point:
            """What the fetcher stored: near, but not equal to, what candles say."""
            price, volume = naive(candles[market], t) or (1.0, 1.0)
            return Point(market, t, price * 1.001, volume)

        kept = [fetched(BTC, t) for t in ticks if t not in hole]
        kept += [fetched(ETH, t) for t in ticks[-60:]]
        exchange.add_fault("candles", "429-retry-after", 1, None)  # rate-limited once
        async with aws.clients(settings) as (client, _):
            await init_db(client, settings)
            store = Store(client, settings)
            await store.put_points(kept)
            async with aiohttp.ClientSession() as http:
                job = Backfill(settings, store, http, per_minute=6000)
                summary = await job.run([BTC, ETH, LTC], start, now)
                again = await Backfill(settings, store, http, per_minute=6000).run(
                    [BTC, ETH, LTC], start, now
                )
            stored = {m: await store.query_points(m, start - 1, now) for m in (BTC, ETH, LTC)}

        expected_missing = len(hole) + (len(ticks) - 60) + len(ticks)
        assert summary.failed == [] and summary.missing == expected_missing
        assert again.missing == 0 and again.written == 0  # a rerun finds no gap
        kept_at = {(p.market, p.t): p for p in kept}
        for market, points in stored.items():
            assert [p.t for p in points] == ticks, market  # every tick, each once
            for p in points:
                if (market, p.t) in kept_at:
                    assert p == kept_at[(market, p.t)]  # only gaps were written
                else:
                    price, volume = naive(candles[market], p.t) or (None, None)
                    assert p.price == price and p.volume is not None
                    assert abs(p.volume - (volume or 0)) <= 1e-9 * max(1.0, volume or 0)

    # The stream brings the backfilled points to the board: rank equals the reference.
    everything = [p for points in stored.values() for p in points]
    async with stack(settings) as (_, alerter, http_app):
        await published(alerter, len(everything))
        ranking = (await http_app.get("/rank", params={"limit": 10})).json()
    end = max(p.t for p in everything)
    assert ranking["total"] == 3
    for entry in ranking["ranking"]:
        market = Market(entry["exchange"], entry["symbol"])
        values = [p.price for p in stored[market] if end - HOURS * 3600 < p.t <= end]
        assert entry["count"] == len(values)
        assert abs(entry["stdev"] - statistics.stdev(values)) <= 1e-9 * statistics.stdev(values)


async def test_backfill_command_validates_and_runs(dynamodb_url: str) -> None:
    """`tracker backfill` as a user types it: bad input refused with a message, then a run."""
    settings = make_settings(dynamodb_url, fetch_interval=60)
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
    async with running_demo() as (_, base):
        env = {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_BITFINEX_URL": base,
            "TRACKER_FETCH_INTERVAL": "60",
        }

        async def tracker(*args: str) -> tuple[int, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tracker",
                "backfill",
                *args,
                env=os.environ | env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await process.communicate()
            return process.returncode or 0, out.decode()

        code, out = await tracker("--exchange", "kraken", "--symbols", "btcusd")
        assert code == 2 and "only 'bitfinex'" in out
        code, out = await tracker("--symbols", "btc usd!", "--since", "1h")
        assert code == 2 and "--symbols" in out
        code, out = await tracker("--symbols", "btcusd", "--since", "yesterday")
        assert code == 2 and "not a duration" in out
        code, out = await tracker("--symbols", "btcusd,ethusd", "--since", "2h", "--rate", "600")
        assert code == 0, out
        assert "2 market(s), 240 tick(s) missing, 240 point(s) written" in out, out
    async with aws.dynamodb(settings) as client:
        points = await Store(client, settings).query_points(BTC, time.time() - 7200, time.time())
    assert 119 <= len(points) <= 120


async def test_fetcher_refills_the_restart_gap_when_configured(dynamodb_url: str) -> None:
    """A fetcher started 30 minutes after the last tick it wrote refills those minutes from
    candles in the background (TRACKER_BACKFILL_MAX_GAP), while its own ticks go on."""
    now = time.time()
    previous = tick_floor(now, 60) - 1800
    async with running_demo() as (_, base):
        settings = make_settings(
            dynamodb_url, fetch_interval=1, bitfinex_url=base, backfill_max_gap=3600
        )
        async with aiohttp.ClientSession() as http, aws.dynamodb(settings) as client:
            await init_db(client, settings)
            store = Store(client, settings)
            await store.put_heartbeat("fetcher", {"newest_tick": previous})
            fetcher = Fetcher(settings, store, http, build_sources(settings))
            stop = asyncio.Event()
            task = asyncio.create_task(fetcher.main(stop))

            async def refilled() -> bool:
                series = await store.query_series(BTC, previous, now - 60, "price")
                return len(series) == 29

            await wait_for(refilled, 60, "the 29 minute ticks of the gap refilled")
            stop.set()
            await asyncio.wait_for(task, 30)
            gap = await store.query_series(BTC, previous, now - 60, "price")
    assert [t for t, _ in gap] == list(range(previous + 60, previous + 1800, 60))
