"""The fetcher on DynamoDB Local + the demo exchange: exact values, idempotent ticks, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from common.assets import AGGREGATES
from common.models import Market
from common.settings import Settings
from common.ticks import next_tick, tick_floor
from demo.exchange import FAULTS as DEMO_FAULTS
from fetcher.aggregate import points_of
from fetcher.sources import build_sources
from fetcher.worker import Fetcher
from tests.helpers.exchange import served_markets, stored_at
from tests.helpers.running import demo_fetcher, running_demo
from tests.helpers.tables import tables
from tests.helpers.waiting import wait_for


@pytest.fixture
async def fetcher(dynamodb_url: str, demo: tuple[Any, str]) -> AsyncIterator[Fetcher]:
    async with demo_fetcher(dynamodb_url, demo[1]) as fetcher:
        yield fetcher


async def only_markets_and_figures(fetcher: Fetcher, expected: Any) -> None:
    """The table holds one item per expected market and, beside them, only the tick's
    cross-market figures (exchanges all and asset)."""
    scan = await fetcher.store.client.scan(
        TableName=fetcher.store.points_table, ProjectionExpression="m"
    )
    keys = [Market.from_key(i["m"]["S"]) for i in scan["Items"]]
    assert sorted(m for m in keys if m.exchange not in AGGREGATES) == sorted(expected)
    assert fetcher.figures.across is not None
    assert sorted(m for m in keys if m.exchange in AGGREGATES) == sorted(
        p.market for p in points_of(fetcher.figures.across)
    )


async def test_fetch_once_stores_exactly_the_served_markets(fetcher: Fetcher, demo: Any) -> None:
    """Every served market is stored at the tick with the served price and volume, symbols
    normalised (colon kept, t prefix dropped), funding rows and index keys left out."""
    exchange, _ = demo
    t = tick_floor(time.time(), 60)
    assert await fetcher.fetch_once(t)
    expected = served_markets(exchange)
    assert len(expected) == 300 + 120  # 300 Bitfinex pairs, 4 Cryptowatch exchanges × 30
    assert Market("bitfinex", "testbtc:testusd") in expected
    assert await stored_at(fetcher.store, expected, t) == expected
    await only_markets_and_figures(fetcher, expected)
    # The figures /metrics shows: markets fetched and points written per source.
    await fetcher.heartbeat()
    beat = await fetcher.store.get_heartbeat("fetcher")
    assert beat is not None
    assert beat["bitfinex.fetched"] == beat["bitfinex.written"] == 300
    assert beat["cryptowatch.fetched"] == beat["cryptowatch.written"] == 120
    assert beat["newest_tick"] == t and beat["buffer_points"] == 0


async def test_same_tick_twice_leaves_one_point_per_market(fetcher: Fetcher, demo: Any) -> None:
    """Re-running a tick overwrites: still one point per market, with the newer values."""
    exchange, _ = demo
    t = tick_floor(time.time(), 60)
    await fetcher.fetch_once(t)
    await fetcher.fetch_once(t)
    expected = served_markets(exchange)
    await only_markets_and_figures(fetcher, expected)
    assert await stored_at(fetcher.store, expected, t) == expected


# Every transient fault the demo serves (the others are tested where they belong).
FAULTS = sorted(
    DEMO_FAULTS
    - {"bad-rows", "zero-price", "drop-pair", "new-pair", "maintenance", "invalid", "empty"}
)


@pytest.mark.parametrize("kind", FAULTS)
async def test_transient_fault_is_survived_and_the_next_tick_is_complete(
    fetcher: Fetcher, demo: Any, kind: str
) -> None:
    """A transient fault on both sources is retried within the tick; nothing is missing."""
    exchange, _ = demo
    for source in ("bitfinex", "cryptowatch"):
        exchange.add_fault(source, kind, 1, None)
    # The next tick, so that its whole budget (up to the tick after) is ahead, whatever
    # second of the minute this runs at: Retry-After 1 must fit in it.
    t = next_tick(time.time(), 60)
    for tick in (t, t + 60):
        assert await fetcher.fetch_once(tick)
        expected = served_markets(exchange)
        assert await stored_at(fetcher.store, expected, tick) == expected
    assert fetcher.figures.sources["bitfinex"].failures == 0


async def test_bad_rows_zero_price_and_changing_pairs(fetcher: Fetcher, demo: Any) -> None:
    """Bad rows and a zero price are skipped without losing the good rows around them; a pair
    that disappears is no longer written and a new one is."""
    exchange, _ = demo
    exchange.add_fault("bitfinex", "bad-rows", 1, None)
    exchange.add_fault("cryptowatch", "zero-price", 1, None)
    t = tick_floor(time.time(), 60)
    assert await fetcher.fetch_once(t)
    expected = served_markets(exchange)
    assert len(expected) == 300 + 120 - 1  # the zero-price market is skipped
    assert await stored_at(fetcher.store, expected, t) == expected
    assert fetcher.figures.sources["bitfinex"].skipped == 3

    exchange.add_fault("bitfinex", "drop-pair", 1, "btcusd")
    exchange.add_fault("bitfinex", "new-pair", 1, "newcoin:usd")
    assert await fetcher.fetch_once(t + 60)
    assert await fetcher.store.get_point(Market("bitfinex", "btcusd"), t + 60) is None
    assert await fetcher.store.get_point(Market("bitfinex", "newcoin:usd"), t + 60) is not None


async def test_a_failing_source_does_not_block_the_other(fetcher: Fetcher, demo: Any) -> None:
    """Cryptowatch failing every attempt of a tick leaves Bitfinex's points written."""
    exchange, _ = demo
    exchange.add_fault("cryptowatch", "500", 1000, None)
    fetcher.settings.fetch_interval = 3  # a short tick budget so the failure ends quickly
    t = tick_floor(time.time(), 3)
    assert not await fetcher.fetch_once(t)
    assert fetcher.figures.sources["cryptowatch"].failures == 1
    assert await fetcher.store.get_point(Market("bitfinex", "btcusd"), t) is not None
    assert await fetcher.store.get_point(Market("kraken", "btcusd"), t) is None


async def test_dynamodb_down_for_20_s_loses_no_tick(tmp_path: Any) -> None:
    """With DynamoDB stopped for 20 s the ticks wait in memory and are all written once it is
    back: every tick due from the first written to the last holds every market, and the
    schedule missed none."""

    async with running_demo(pairs=50) as (_, url):
        await _outage(tmp_path, url)


async def _outage(tmp_path: Any, url: str) -> None:
    from tracker import dynamodb_local

    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, tmp_path)
    settings = Settings(
        aws_endpoint_url=f"http://127.0.0.1:{port}",
        table_prefix="down",
        sources=["bitfinex"],
        bitfinex_url=url,
        fetch_interval=1,
        fetch_timeout=0.5,
    )
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http, tables(settings) as store:
            fetcher = Fetcher(settings, store, http, build_sources(settings))
            loop = asyncio.create_task(fetcher.main(stop))
            await wait_for(lambda: fetcher.ingest.newest_written > 0, 15, "a tick written")
            first = fetcher.ingest.newest_written
            # Blocking calls go to a thread: the fetcher's ticks run on this loop.
            ddb.terminate()
            await asyncio.to_thread(ddb.wait, 20)
            await asyncio.sleep(20)  # the outage's own length
            assert fetcher.ingest.depth > 0, "ticks should be waiting in memory"
            ddb = await asyncio.to_thread(dynamodb_local.start, port, tmp_path)
            await wait_for(lambda: not fetcher.ingest.buffer, 120, "the buffer written")
            stop.set()
            await loop
            await fetcher.close()
            last = fetcher.ingest.newest_written
            assert last - first >= 20
            assert fetcher.figures.missed == 0
            assert fetcher.ingest.dropped_points == 0
            # Every tick due, for every market: each market's points read back from the table.
            scan = await store.client.scan(TableName=store.points_table, ProjectionExpression="m")
            markets = {Market.from_key(i["m"]["S"]) for i in scan["Items"]}
            markets = {m for m in markets if m.exchange == "bitfinex"}
            assert len(markets) == 50
            due = list(range(first, last + 1))
            for market in sorted(markets):
                points = await store.query_points(market, first - 1, last)
                assert [p.t for p in points] == due, market
    finally:
        stop.set()
        ddb.terminate()
        await asyncio.to_thread(ddb.wait, 20)
