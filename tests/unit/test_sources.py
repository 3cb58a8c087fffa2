"""Parsers against recorded answers in the real shapes, every quirk in exchange-formats.md."""

from __future__ import annotations

from common.models import Market, Quote
from fetcher.sources.bitfinex import Bitfinex
from fetcher.sources.cryptowatch import Cryptowatch
from tests.conftest import load


def test_bitfinex_keeps_every_good_row_and_counts_the_bad() -> None:
    """Trading rows become quotes; funding rows are skipped silently; bad rows are counted."""
    parsed = Bitfinex("http://x").parse(load("bitfinex", "tickers"))
    by_market = {q.market: q for q in parsed.quotes}
    assert by_market[Market("bitfinex", "btcusd")] == Quote(
        Market("bitfinex", "btcusd"), 10644.0, 14480.89
    )
    assert Market("bitfinex", "testbtc:testusd") in by_market
    assert Market("bitfinex", "avax:usd") in by_market
    assert Market("bitfinex", "btcf0:ustf0") in by_market
    assert by_market[Market("bitfinex", "btcjpy")].price == 16001999.0
    # An illiquid pair with a price but no volume is kept, volume unknown.
    assert by_market[Market("bitfinex", "illiqusd")].volume is None
    assert not any(q.market.symbol.startswith("usd") for q in parsed.quotes)  # no funding
    assert len(parsed.quotes) == 7
    assert parsed.skipped == {"no price": 1, "malformed row": 2, "price not positive": 1}


def test_bitfinex_error_answers_yield_nothing() -> None:
    """The rate-limit object and the error array instead of the ticker array are each one
    skipped answer, not a crash and not rows."""
    parsed = Bitfinex("http://x").parse(load("bitfinex", "rate_limit"))
    assert parsed.quotes == [] and parsed.skipped == {"answer is not a list": 1}
    parsed = Bitfinex("http://x").parse(load("bitfinex", "error"))
    assert parsed.quotes == [] and parsed.skipped == {"error answer": 1}


def test_cryptowatch_maps_markets_and_volume_and_drops_direct_exchanges() -> None:
    """market:{exchange}:{pair} keys become markets with volume from summaries; index: keys and
    markets of exchanges fetched directly are dropped."""
    payload = {
        "prices": load("cryptowatch", "prices"),
        "summaries": load("cryptowatch", "summaries"),
    }
    parsed = Cryptowatch("http://x", direct=frozenset({"bitfinex"})).parse(payload)
    quotes = {q.market: q for q in parsed.quotes}
    assert quotes[Market("kraken", "btcusd")] == Quote(Market("kraken", "btcusd"), 40123.4, 1234.5)
    assert quotes[Market("coinbase-pro", "ethusd")].volume == 98765.4
    assert quotes[Market("binance", "dogeusdt")].volume is None  # no summary for it
    assert Market("bitfinex", "btcusd") not in quotes
    assert set(quotes) == {
        Market("kraken", "btcusd"),
        Market("coinbase-pro", "ethusd"),
        Market("binance", "dogeusdt"),
    }
    assert parsed.skipped == {"no price": 1, "price not positive": 1, "malformed key": 1}


def test_cryptowatch_keeps_bitfinex_markets_when_bitfinex_is_not_fetched_directly() -> None:
    """Only exchanges fetched directly are dropped."""
    payload = {"prices": load("cryptowatch", "prices"), "summaries": None}
    parsed = Cryptowatch("http://x").parse(payload)
    assert Market("bitfinex", "btcusd") in {q.market for q in parsed.quotes}


def test_cryptowatch_without_result_yields_nothing() -> None:
    """An error answer ({"error": ...}) is skipped as a whole."""
    parsed = Cryptowatch("http://x").parse(
        {"prices": {"error": "Out of allowance"}, "summaries": None}
    )
    assert parsed.quotes == [] and parsed.skipped == {"answer has no result": 1}
