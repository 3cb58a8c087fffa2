"""The ccxt source (`ccxt:kraken`) without network: ccxt's own Kraken client pointed at the demo
exchange's Kraken API, through load_markets and fetch_tickers, into DynamoDB Local. With
Cryptowatch also on, its kraken markets are dropped: Kraken is fetched directly."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from common import aws
from common.db import Store
from common.models import Market
from common.schema import init_db
from common.ticks import tick_floor
from fetcher.errors import ExchangeRejected, ExchangeUnavailable, Maintenance
from fetcher.sources import build_sources, close_sources
from fetcher.sources.ccxt_source import CcxtSource, symbol_of
from fetcher.worker import Fetcher
from tests.helpers.tables import make_settings


def served_kraken(exchange: Any) -> dict[Market, tuple[float, float]]:
    """The demo's last Kraken ticker answer, read the way Kraken documents it: c[0] is the
    last trade's price, v[1] the volume of the last 24 hours; XBT is BTC."""
    served: dict[Market, tuple[float, float]] = {}
    for pair, ticker in exchange.served["kraken"]["result"].items():
        base = pair.removesuffix("ZUSD") if pair.endswith("ZUSD") else pair.removesuffix("USD")
        code = {"XXBT": "BTC", "XETH": "ETH", "XLTC": "LTC", "XXRP": "XRP", "XXMR": "XMR"}.get(
            base, base
        )
        served[Market("kraken", code.lower() + "usd")] = (
            float(ticker["c"][0]),
            float(ticker["v"][1]),
        )
    return served


async def test_ccxt_kraken_from_the_demo_exchange(dynamodb_url: str, demo: Any) -> None:
    exchange, url = demo
    settings = make_settings(
        dynamodb_url, sources=["ccxt:kraken", "cryptowatch"], ccxt_url=url, cryptowatch_url=url
    )
    sources = build_sources(settings)
    try:
        async with aiohttp.ClientSession() as http, aws.dynamodb(settings) as client:
            await init_db(client, settings)
            store = Store(client, settings)
            fetcher = Fetcher(settings, store, http, sources)
            t = tick_floor(time.time(), 60)
            assert await fetcher.fetch_once(t)
            expected = served_kraken(exchange)
            assert len(expected) == 30 and Market("kraken", "btcusd") in expected
            for market, (price, volume) in expected.items():
                point = await store.get_point(market, t)
                assert point is not None, market
                assert point.price == pytest.approx(price, rel=1e-12)
                assert point.volume == pytest.approx(volume, rel=1e-12)
            # Cryptowatch's kraken markets were dropped (fetched directly): 4 exchanges × 30 left.
            assert fetcher.figures.sources["ccxt:kraken"].fetched == 30
            # ccxt's unified codes (Kraken's XXBT is BTC) put Kraken's BTC/USD beside the others.
            assert fetcher.figures.across is not None
            btc = fetcher.figures.across.by_pair["btc-usd"]
            assert sorted(c.exchange for c in btc.constituents) == [
                "binance",
                "bitfinex",
                "bitstamp",
                "coinbase-pro",
                "kraken",
            ]
            assert fetcher.figures.sources["cryptowatch"].fetched == 120
    finally:
        await close_sources(sources)


def test_ccxt_parse_recorded_answer_and_settings() -> None:
    """ccxt's unified tickers (as recorded from fetch_tickers) → spot markets only; the
    contract is ignored as Bitfinex's perpetuals are, the bad rows skipped, each counted."""
    recorded = {
        "BTC/USD": {"symbol": "BTC/USD", "last": 97000.5, "close": 97000.5, "baseVolume": 1234.5},
        "ETH/EUR": {"symbol": "ETH/EUR", "last": None, "close": 3100.0, "baseVolume": 10.0},
        "BTC/USD:USD": {"symbol": "BTC/USD:USD", "last": 97010.0, "baseVolume": 5.0},
        "DOGE/USD": {"symbol": "DOGE/USD", "last": 0, "baseVolume": 1.0},
        "SOL/USD": "garbage",
    }
    source = CcxtSource.__new__(CcxtSource)
    source.exchange_id = "kraken"
    parsed = source.parse(recorded)
    assert [(q.market.symbol, q.price, q.volume) for q in parsed.quotes] == [
        ("btcusd", 97000.5, 1234.5),
        ("etheur", 3100.0, 10.0),
    ]
    assert parsed.skipped == {"malformed ticker": 1, "price not positive": 1}
    assert parsed.ignored == {"derivative (not spot)": 1}  # one rule for every source
    assert symbol_of("XBT/USDT") == "xbtusdt" and symbol_of("BTCUSD") is None
    with pytest.raises(ValidationError, match="ccxt:<exchange id>"):
        make_settings("http://x", sources=["ccxt:"])


def test_ccxt_errors_become_the_fetchers_error_classes() -> None:
    """ccxt's exception tree maps onto fetcher/errors.py: maintenance, rate limit and network
    trouble are transient (maintenance pauses the source), a bad symbol is permanent."""
    import ccxt.async_support as ccxt_async

    source = CcxtSource.__new__(CcxtSource)
    source.id, source.ccxt = "ccxt:kraken", ccxt_async
    cases = [
        (ccxt_async.OnMaintenance("down for upgrade"), Maintenance, "maintenance"),
        (ccxt_async.RateLimitExceeded("slow down"), ExchangeUnavailable, "rate_limit"),
        (ccxt_async.DDoSProtection("cloudflare"), ExchangeUnavailable, "rate_limit"),
        (ccxt_async.ExchangeNotAvailable("502"), ExchangeUnavailable, "unavailable"),
        (ccxt_async.RequestTimeout("timed out"), ExchangeUnavailable, "unavailable"),
        (ccxt_async.BadSymbol("no such pair"), ExchangeRejected, "rejected"),
    ]
    for raised, error, reason in cases:
        found = source.error(raised)
        assert type(found) is error and found.reason == reason, (raised, found)
        assert type(raised).__name__ in str(found)
