"""Cross-market figures through the real fetcher, DynamoDB Local and the app's lifespan: the
cross-source check and the unsplit markets in /status, a source that does not answer in time
counted absent (not stale) without holding up the tick's figures, and /pairs and /assets
answering from what the fetcher published."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common.settings import Settings
from common.ticks import iso, tick_floor
from fetcher.worker import Fetcher
from tests.helpers.running import app_client, demo_fetcher, running_demo


@asynccontextmanager
async def rig(dynamodb_url: str, **overrides: Any) -> AsyncIterator[tuple[Fetcher, Any, Settings]]:
    async with running_demo() as (exchange, url), demo_fetcher(dynamodb_url, url, **overrides) as f:
        yield f, exchange, f.settings


async def test_a_direct_price_unlike_the_feeds_is_a_status_problem_naming_both(
    dynamodb_url: str,
) -> None:
    """Bitfinex's BTC/USD fetched directly 15 % away from the same market in the Cryptowatch
    feed: /status names the market and both prices; the markets Bitfinex's naming cannot
    split are counted there too, and the pair left the direct one out as an outlier."""
    async with rig(dynamodb_url) as (fetcher, exchange, settings):
        _, direct = exchange.set_price("bitfinex", "btcusd", factor=1.15)
        t = tick_floor(time.time(), settings.fetch_interval)
        assert await fetcher.fetch_once(t)
        doc = fetcher.figures.across
        assert doc is not None and doc.compared == 20  # the 30 bases' bitfinex markets it lists
        (mismatch,) = doc.mismatches
        feed = exchange.served["prices"]["result"]["market:bitfinex:btcusd"]
        assert (mismatch.market, mismatch.direct, mismatch.feed) == (
            "bitfinex:btcusd",
            direct,
            feed,
        )
        async with app_client(settings) as http:
            status = (await http.get("/status")).json()
            pair = (await http.get("/pairs/btc-usd")).json()
    problem = (
        f"cross-source check: bitfinex:btcusd is {direct:.10g} fetched directly but "
        f"{feed:.10g} through the Cryptowatch feed ({100 * (feed / direct - 1):+.2f} %)"
    )
    assert problem in status["problems"], status["problems"]
    assert status["pairs"]["ok"]
    assert f"{doc.unsplit} market(s) without a known base and quote" in status["pairs"]["detail"]
    assert doc.unsplit > 0 and "bitfinex:opusd" in status["pairs"]["detail"]
    statuses = {c["exchange"]: c["status"] for c in pair["constituents"]}
    assert statuses == dict.fromkeys(("binance", "bitstamp", "coinbase-pro", "kraken"), "used") | {
        "bitfinex": "outlier"
    }


async def test_a_source_that_does_not_answer_is_absent_and_does_not_hold_up_the_figures(
    dynamodb_url: str,
) -> None:
    """The Cryptowatch feed hangs past the tick's deadline: the tick's figures are computed
    from Bitfinex alone, its markets absent (no constituent stale), and published."""
    async with rig(dynamodb_url, fetch_interval=5) as (fetcher, exchange, settings):
        t = tick_floor(time.time(), settings.fetch_interval)
        assert await fetcher.fetch_once(t)  # a first tick with both sources
        exchange.add_fault("cryptowatch", "timeout", 50, None)
        later = t + settings.fetch_interval
        assert not await fetcher.fetch_once(later)  # the feed did not answer by the deadline
        doc = fetcher.figures.across
        assert doc is not None and doc.t == later
        btc = doc.by_pair["btc-usd"]
        assert [(c.exchange, c.status) for c in btc.constituents] == [("bitfinex", "used")]
        assert not any(c.status == "stale" for p in doc.pairs for c in p.constituents)
        async with app_client(settings) as http:
            answer = (await http.get("/pairs/btc-usd")).json()
        assert answer["time"] == iso(later)
        assert [c["exchange"] for c in answer["constituents"]] == ["bitfinex"]
