"""Parsers against answers in the real shapes (tests/data, written from exchange-formats.md):
every quirk, every error answer as a typed error, every Cryptowatch era and page."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from common.assets import Split
from common.models import Market, Quote
from fetcher.errors import (
    ExchangeRejected,
    ExchangeUnavailable,
    Maintenance,
    SourceError,
    UnknownShape,
    classify,
)
from fetcher.sources.bitfinex import Bitfinex
from fetcher.sources.cryptowatch import Cryptowatch
from tests.helpers.data import Pages, load


def test_bitfinex_keeps_every_good_row_and_counts_the_bad() -> None:
    """Trading rows become quotes; funding rows and derivatives are ignored, bad rows skipped,
    each counted by reason."""
    parsed = Bitfinex("http://x").parse(load("bitfinex", "tickers"))
    by_market = {q.market: q for q in parsed.quotes}
    assert by_market[Market("bitfinex", "btcusd")] == Quote(
        Market("bitfinex", "btcusd"), 10644.0, 14480.89, Split("btc", "usd")
    )
    assert by_market[Market("bitfinex", "testbtc:testusd")].split == Split("testbtc", "testusd")
    assert Market("bitfinex", "testbtc:testusd") in by_market
    assert Market("bitfinex", "avax:usd") in by_market
    assert Market("bitfinex", "btcf0:ustf0") not in by_market  # a perpetual: not spot
    assert by_market[Market("bitfinex", "btcjpy")].price == 16001999.0
    # An illiquid pair with a price but no volume is kept, volume unknown.
    assert by_market[Market("bitfinex", "illiqusd")].volume is None
    assert not any(q.market.symbol.startswith("usd") for q in parsed.quotes)  # no funding
    assert len(parsed.quotes) == 6
    assert parsed.skipped == {"no price": 1, "malformed row": 2, "price not positive": 1}
    assert parsed.ignored == {"funding (not a market)": 2, "derivative (not spot)": 1}


@pytest.mark.parametrize(
    ("name", "error", "reason", "code"),
    [
        ("ratelimit_array", ExchangeUnavailable, "rate_limit", 11010),
        ("error", ExchangeRejected, "rejected", 10020),
    ],
)
def test_bitfinex_error_answers_are_typed_errors(
    name: str, error: type[SourceError], reason: str, code: int | None
) -> None:
    """An error answer in place of the tickers is a failed fetch that keeps the exchange's
    code and words — never zero quotes."""
    payload = load("bitfinex", name)
    with pytest.raises(error) as raised:
        Bitfinex("http://x").parse(payload)
    assert raised.value.reason == reason and raised.value.code == code
    assert raised.value.words and raised.value.words in str(raised.value)


@pytest.mark.parametrize(
    ("status", "payload", "error", "reason"),
    [
        (500, ["error", 10020, "symbol: invalid"], ExchangeRejected, "rejected"),
        (500, ["error", 20060, "maintenance"], Maintenance, "maintenance"),
        (500, ["error", 11010, "ratelimit: error"], ExchangeUnavailable, "rate_limit"),
        (500, ["error", 10000, "unknown error"], ExchangeUnavailable, "unavailable"),
        (429, {"error": "ERR_RATE_LIMIT"}, ExchangeUnavailable, "rate_limit"),
        (429, {"error": "Out of allowance"}, ExchangeUnavailable, "rate_limit"),
        (404, {"error": "Route not found"}, ExchangeRejected, "rejected"),
        (503, {"error": "service temporarily unavailable"}, ExchangeUnavailable, "unavailable"),
        (400, {"error": "unable to generate the answer"}, ExchangeRejected, "rejected"),
        (429, [], ExchangeUnavailable, "rate_limit"),
    ],
)
def test_every_answer_is_classified(
    status: int, payload: Any, error: type[SourceError], reason: str
) -> None:
    """Transient (rate limit, maintenance, not ready, 5xx without a permanent code) apart from
    permanent (invalid parameters, unknown route), whatever the HTTP status."""
    found = classify("bitfinex", status, payload)
    assert type(found) is error and found.reason == reason


def test_data_is_not_an_error() -> None:
    """Rows, a result mapping: data, at any status."""
    assert classify("bitfinex", 200, load("bitfinex", "tickers")) is None
    assert classify("cryptowatch", 200, load("cryptowatch", "prices")) is None


def test_an_unknown_shape_is_an_error_with_a_sample() -> None:
    """Neither rows nor an error answer: a failed fetch whose message shows the answer."""
    with pytest.raises(UnknownShape) as raised:
        Bitfinex("http://x").parse({"tickers": "moved"})
    assert "{'tickers': 'moved'}" in str(raised.value)


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


@pytest.mark.parametrize(
    ("name", "error"),
    [("out_of_allowance", ExchangeUnavailable), ("route_not_found", ExchangeRejected)],
)
def test_cryptowatch_error_answers_are_typed_errors(name: str, error: type[SourceError]) -> None:
    """{"error": ...} in place of the prices is a failed fetch, never zero quotes."""
    with pytest.raises(error):
        Cryptowatch("http://x").parse({"prices": load("cryptowatch", name), "summaries": None})


def test_cryptowatch_2016_keys_without_the_market_prefix() -> None:
    """`exchange:pair` keys (the API's 2016–17 form) are markets too; index keys are ignored
    and a key of three parts is skipped, each counted; the integer allowance is a figure."""
    payload = {"prices": load("cryptowatch", "prices_2016"), "summaries": None}
    parsed = Cryptowatch("http://x").parse(payload)
    assert {q.market for q in parsed.quotes} == {
        Market("bitfinex", "bfxbtc"),
        Market("kraken", "btceur"),
        Market("btce", "ltcusd"),
    }
    assert parsed.ignored == {"index (not a market)": 1}
    assert parsed.skipped == {"malformed key": 1}
    assert parsed.figures == {"allowance_remaining": 1999983233.0}


async def test_cryptowatch_follows_pages_and_maps_summaries_keyed_by_id() -> None:
    """Pages are followed while `hasMore`; summaries keyed by market id are mapped through
    /markets; an id /markets does not know is counted; the last allowance is the figure."""
    get = Pages(
        {
            "/markets/prices": load("cryptowatch", "prices_page1"),
            "/markets/prices?cursor=dGhlIG5leHQgcGFnZQ%3D%3D": load("cryptowatch", "prices_page2"),
            "/markets/summaries": load("cryptowatch", "summaries_by_id"),
            "/markets": load("cryptowatch", "markets"),
            "/pairs": load("cryptowatch", "pairs"),
        }
    )
    source = Cryptowatch("http://x")
    parsed = source.parse(await source.fetch(get))
    quotes = {q.market: q for q in parsed.quotes}
    btc_usd = Split("btc", "usd")
    assert quotes == {
        Market("kraken", "btcusd"): Quote(Market("kraken", "btcusd"), 40123.4, 1234.5, btc_usd),
        # /pairs does not list ethusd: no split, counted, never guessed.
        Market("kraken", "ethusd"): Quote(Market("kraken", "ethusd"), 2500.5, 777.0),
        Market("coinbase-pro", "btcusd"): Quote(
            Market("coinbase-pro", "btcusd"), 40130.0, None, btc_usd
        ),
    }
    assert parsed.unsplit == ["kraken:ethusd"]
    assert parsed.skipped == {"summary of an unknown market id": 1}
    assert parsed.figures == {"allowance_remaining": 9.985}
    # /markets is not asked again at the next tick for the id it does not list.
    await source.fetch(get)
    assert get.asked.count("/markets") == 1


async def test_a_repeated_cursor_stops_the_pages_and_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A feed whose next page answers the cursor it was asked with is asked twice a tick, not
    `MAX_PAGES` times, and the log says so once across ticks."""
    page = {"result": {"market:kraken:btcusd": 1.0}, "cursor": {"last": "abc", "hasMore": True}}
    get = Pages({"/markets/prices": page, "/markets/prices?cursor=abc": page})
    source = Cryptowatch("http://x")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            answer = await source.pages(get, "/markets/prices")
            assert answer["result"] == {"market:kraken:btcusd": 1.0}
    assert len(get.asked) == 3 * 2
    assert caplog.text.count("a cursor already followed") == 1
