"""The fetcher on DynamoDB Local + the demo exchange: exact values, idempotent ticks, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from common import aws
from common.assets import AGGREGATES
from common.db import Store
from common.models import Market
from common.schema import init_db
from common.settings import Settings
from common.ticks import next_tick, tick_floor
from demo.exchange import FAULTS as DEMO_FAULTS
from fetcher.aggregate import points_of
from fetcher.sources import build_sources
from fetcher.sources.bitfinex import is_derivative, symbol_of
from fetcher.worker import Fetcher
from tests.conftest import demo_fetcher, running_demo


@pytest.fixture
async def fetcher(dynamodb_url: str, demo: tuple[Any, str]) -> AsyncIterator[Fetcher]:
    async with demo_fetcher(dynamodb_url, demo[1]) as fetcher:
        yield fetcher


def served_markets(exchange: Any) -> dict[Market, tuple[float, float | None]]:
    """What the demo exchange last answered (spot markets, every Cryptowatch shape),
    normalised as CONTRACT says."""
    expected: dict[Market, tuple[float, float | None]] = {}
    for row in exchange.served["tickers"]:
        trading = isinstance(row, list) and str(row[0]).startswith("t") and len(row) == 11
        if trading and not is_derivative(row[0]) and isinstance(row[7], int | float) and row[7] > 0:
            expected[Market("bitfinex", symbol_of(row[0]))] = (row[7], row[8])
    by_id = {str(i): key for key, i in exchange.market_ids().items()}
    summaries = exchange.served["summaries"]["result"].items()
    volumes = {by_id.get(k, k): v["volume"] for k, v in summaries}
    for key, price in exchange.served["prices"]["result"].items():
        parts = key.split(":")
        if parts[0] == "index":
            continue
        exchange_name, pair = parts[-2:]
        if exchange_name != "bitfinex" and price > 0:
            expected[Market(exchange_name, pair)] = (price, volumes[f"{exchange_name}:{pair}"])
    return expected


async def stored_at(store: Store, markets: Any, t: int) -> dict[Market, tuple[float, float | None]]:
    found: dict[Market, tuple[float, float | None]] = {}
    for market in markets:
        point = await store.get_point(market, t)
        if point:
            found[market] = (point.price, point.volume)
    return found


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
    back: every tick from start to end holds every market."""

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
        async with aiohttp.ClientSession() as http, aws.dynamodb(settings) as client:
            await init_db(client, settings)
            store = Store(client, settings)
            fetcher = Fetcher(settings, store, http, build_sources(settings))
            loop = asyncio.create_task(fetcher.main(stop))
            await _until(lambda: fetcher.ingest.newest_written > 0, 15)
            first = fetcher.ingest.newest_written
            ddb.terminate()
            ddb.wait(20)
            await asyncio.sleep(20)
            assert fetcher.ingest.depth > 0, "ticks should be waiting in memory"
            ddb = dynamodb_local.start(port, tmp_path)
            await _until(lambda: not fetcher.ingest.buffer, 120)
            stop.set()
            await loop
            await fetcher.close()
            last = fetcher.ingest.newest_written
            assert last - first >= 20
            btc = await store.query_points(Market("bitfinex", "btcusd"), first - 1, last)
            ticks = [p.t for p in btc]
            missing = sorted(set(range(first, last + 1)) - set(ticks))
            # Only ticks the schedule itself counted as missed may be absent.
            assert len(missing) <= fetcher.figures.missed, missing
            assert fetcher.ingest.dropped_points == 0
            # Every written tick holds every market, not just the one looked at above (and,
            # beside them, its cross-market figures: exchanges all and asset).
            for t in ticks[:: max(1, len(ticks) // 5)]:
                count = await client.scan(
                    TableName=store.points_table,
                    Select="COUNT",
                    FilterExpression="t = :t AND begins_with(m, :b)",
                    ExpressionAttributeValues={":t": {"N": str(t)}, ":b": {"S": "bitfinex:"}},
                )
                assert count["Count"] == 50
    finally:
        stop.set()
        ddb.terminate()
        ddb.wait(20)


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
