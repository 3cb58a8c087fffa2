"""Every real recorded exchange answer in ../shared/recorded/ through the parser that meets it,
and the demo exchange answering each route in the recorded shape.

Each check names what the file proves; a file added to shared/recorded without a check here
fails `test_every_recorded_file_has_a_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from common.assets import Split, bitfinex_listing, split_bitfinex
from common.models import Market, Quote
from fetcher.backfill import Candle, parse_candles
from fetcher.errors import ExchangeRejected, ExchangeUnavailable, Maintenance, classify
from fetcher.sources.base import Parsed
from fetcher.sources.bitfinex import Bitfinex
from fetcher.sources.cryptowatch import Cryptowatch, summaries_by_market
from tests.helpers.data import Pages, recorded, recorded_names
from tests.helpers.running import running_demo


# -- Bitfinex ---------------------------------------------------------------------------------
def tickers_btcusd_fusd_bothan(answer: Any) -> None:
    """A trading row becomes a quote split btc/usd; the 17-field funding row is not a market."""
    parsed = Bitfinex("http://x").parse(answer)
    btcusd = Market("bitfinex", "btcusd")
    assert parsed.quotes == [Quote(btcusd, 101550, 661.88869229, Split("btc", "usd"))]
    assert parsed.ignored == {"funding (not a market)": 1} and not parsed.skipped


def tickers_btcusd_spot_and_truncated_bothan(answer: Any) -> None:
    """A 9-field truncated row is skipped and counted; the good row beside it is kept."""
    parsed = Bitfinex("http://x").parse(answer)
    assert [(q.market.symbol, q.price, q.volume) for q in parsed.quotes] == [
        ("btcusd", 101750, 663.27534767)
    ]
    assert parsed.skipped == {"malformed row": 1}


def tickers_btcusd_jkorf(answer: Any) -> None:
    """The documentation's row: LAST_PRICE and VOLUME at their positions, all decimals kept."""
    (q,) = Bitfinex("http://x").parse(answer).quotes
    assert (q.price, q.volume, q.split) == (10644.00645389, 14480.89849423, Split("btc", "usd"))


def tickers_fusd_jkorf(answer: Any) -> None:
    """A funding row alone (with a `4e-7` in it) is no market, and no error either."""
    parsed = Bitfinex("http://x").parse(answer)
    assert parsed.quotes == [] and parsed.ignored == {"funding (not a market)": 1}


def conf_pair_exchange_jkorf(answer: Any) -> None:
    """Every one of the 422 listed pairs splits by Bitfinex's rule, colon pairs included, and
    the aliases apply (ALGUST → algo/usdt, UST:CNHT → usdt/cnht); an unlisted one does not."""
    listed, renames = bitfinex_listing(answer)
    assert listed is not None and len(listed) == 422 and renames == {}
    splits = {p: split_bitfinex(p, listed) for p in listed}
    assert all(splits.values()), [p for p, s in splits.items() if s is None]
    assert splits["btc:cnht"] == Split("btc", "cnht")
    assert splits["dusk:usd"] == Split("dusk", "usd")
    assert splits["algust"] == Split("algo", "usdt")
    assert splits["ust:cnht"] == Split("usdt", "cnht")
    assert split_bitfinex("zzzusd", listed) is None  # not listed: not guessed


def single_ticker_btcust_ccxt(answer: Any) -> None:
    """`GET /v2/ticker/tBTCUST`: ten fields without SYMBOL; UST is Tether (btc/usdt)."""
    (q,) = Bitfinex("http://x").parse_ticker("tBTCUST", answer).quotes
    assert (q.market, q.price, q.volume) == (Market("bitfinex", "btcust"), 73350, 2638.4314844)
    assert q.split == Split("btc", "usdt")


def candles_1d_ethust_jkorf(answer: Any) -> None:
    """[MTS, OPEN, CLOSE, HIGH, LOW, VOLUME]: the close and volume, seconds from milliseconds."""
    assert parse_candles(answer) == [Candle(1678465320, 20114, 1.43504645)]


def candles_1m_btcusd_2018_fixture(answer: Any) -> None:
    """Three minutes newest first (the default sort), each kept with its own close."""
    assert parse_candles(answer) == [
        Candle(1514764920, 13742, 16.95892633),
        Candle(1514764860, 13772, 15.53608162),
        Candle(1514764800, 13753, 5.13326771),
    ]


def error_10020_limit_invalid(answer: Any) -> None:
    """The 500 answer to a limit too large is a rejection (not retried), quoting Bitfinex."""
    error = classify("bitfinex", 500, answer)
    assert isinstance(error, ExchangeRejected) and error.code == 10020
    assert "limit: invalid" in str(error)
    with pytest.raises(ExchangeRejected):  # and in place of the tickers, a failed fetch
        Bitfinex("http://x").parse(answer)


def error_20060_maintenance(answer: Any) -> None:
    """Maintenance, recognised by its code, whether sent with a 500 or a 200."""
    assert isinstance(classify("bitfinex", 500, answer), Maintenance)
    with pytest.raises(Maintenance):
        Bitfinex("http://x").parse(answer)


def error_rate_limit_object(answer: Any) -> None:
    """The rate-limit object is a wait-and-retry, never a rejection."""
    error = classify("bitfinex", 429, answer)
    assert isinstance(error, ExchangeUnavailable) and error.reason == "rate_limit"


# -- Cryptowatch ------------------------------------------------------------------------------
PRICES_2023 = {
    "1inchusdt": 0.306,
    "aaveusdt": 70.1,
    "achusdt": 0.01742,
    "adabtc": 0.00001046,
    "adaeth": 0.0001634,
    "adausdc": 0.3053,
    "adausdt": 0.3034,
    "algousdt": 0.1094,
}


def prices_2023_azgrom(answer: Any) -> None:
    """Every `market:binance-us:…` key is a market with its price; the float allowance is
    read; without /pairs no split is guessed (each counted)."""
    parsed = Cryptowatch("http://x").parse({"prices": answer, "summaries": None})
    assert {q.market.symbol: q.price for q in parsed.quotes} == PRICES_2023
    assert {q.market.exchange for q in parsed.quotes} == {"binance-us"}
    assert parsed.figures == {"allowance_remaining": 9.985}
    assert len(parsed.unsplit) == 8


async def prices_2023_azgrom_cursor(answer: Any) -> None:
    """Its `cursor` with `hasMore: false` ends the pages at one request."""
    get = Pages({"/markets/prices": answer})
    pages = await Cryptowatch("http://x").pages(get, "/markets/prices")
    assert pages["pages"] == 1 and get.asked == ["/markets/prices"]


def summaries_2023_azgrom(answer: Any) -> None:
    """`volume` is the base volume of the market its `exchange:pair` key names."""
    prices = recorded("cryptowatch", "prices_2023_azgrom")
    parsed = Cryptowatch("http://x").parse({"prices": prices, "summaries": answer})
    volumes = {q.market.symbol: q.volume for q in parsed.quotes}
    assert volumes["1inchusdt"] == answer["result"]["binance-us:1inchusdt"]["volume"]
    assert volumes["aaveusdt"] == answer["result"]["binance-us:aaveusdt"]["volume"]
    assert volumes["adabtc"] is None  # no summary: no volume, the price still stored


def summaries_2023_keyby_id_azgrom(answer: Any) -> None:
    """Keyed by market id: mapped through /markets' ids; an id it does not list is counted."""
    parsed = Parsed()
    by_market = summaries_by_market(answer, {"1": "kraken:btcusd"}, parsed)
    assert by_market == {"kraken:btcusd": answer["result"]["1"]}
    assert parsed.skipped == {"summary of an unknown market id": 1}


def single_price_2023_azgrom(answer: Any) -> None:
    """`GET /markets/kraken/btcusd/price`: one price under `result.price`."""
    assert answer["result"] == {"price": 29080.7}


CHECKS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "bitfinex": {
        f.__name__: f
        for f in (
            tickers_btcusd_fusd_bothan,
            tickers_btcusd_spot_and_truncated_bothan,
            tickers_btcusd_jkorf,
            tickers_fusd_jkorf,
            conf_pair_exchange_jkorf,
            single_ticker_btcust_ccxt,
            candles_1d_ethust_jkorf,
            candles_1m_btcusd_2018_fixture,
            error_10020_limit_invalid,
            error_20060_maintenance,
            error_rate_limit_object,
        )
    },
    "cryptowatch": {
        f.__name__: f
        for f in (
            prices_2023_azgrom,
            summaries_2023_azgrom,
            summaries_2023_keyby_id_azgrom,
            single_price_2023_azgrom,
        )
    },
}
CASES = [(source, name) for source, checks in CHECKS.items() for name in checks]


@pytest.mark.parametrize(("source", "name"), CASES, ids=[n for _, n in CASES])
def test_recorded_answer_through_its_parser(source: str, name: str) -> None:
    """See each check's docstring."""
    CHECKS[source][name](recorded(source, name))


async def test_a_recorded_last_page_is_asked_once() -> None:
    await prices_2023_azgrom_cursor(recorded("cryptowatch", "prices_2023_azgrom"))


@pytest.mark.parametrize("source", ["bitfinex", "cryptowatch"])
def test_every_recorded_file_has_a_check(source: str) -> None:
    """A recording without a check (or a check without its recording) fails here."""
    names = recorded_names(source)
    assert names, f"no recorded answers for {source}"
    assert set(names) == set(CHECKS[source])
    assert set(names) == set(DEMO_ROUTES[source])


# -- the demo exchange answers in the same shapes ---------------------------------------------
def shape(value: Any) -> Any:
    """The JSON value's form: types by position in arrays, keys of objects — except mappings
    keyed by data (markets, ids), whose entries' shapes are merged into one."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None or isinstance(value, str):
        return "null" if value is None else "str"
    if isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            return ["str..."]  # a list of names (pairs)
        if value and all(isinstance(v, list) for v in value):
            return ["rows", sorted({repr(shape(v)) for v in value})]
        return [shape(v) for v in value]
    keyed_by_data = len(value) > 1 and all(":" in k or k.isdigit() for k in value)
    if keyed_by_data:
        return {"<market>": sorted({repr(shape(v)) for v in value.values()})}
    return {k: shape(v) for k, v in sorted(value.items())}


# (route on the demo, status it answers, how to pick the comparable part)
DEMO_ROUTES: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "bitfinex": {
        "tickers_btcusd_fusd_bothan": (
            "/v2/tickers?symbols=ALL",
            lambda a: [r for r in a if r[0] in ("tBTCUSD", "fUSD")],
        ),
        "tickers_btcusd_spot_and_truncated_bothan": (
            "/v2/tickers?symbols=ALL",
            lambda a: [r for r in a if r[0] == "tBTCUSD"] * 2,
        ),
        "tickers_btcusd_jkorf": ("/v2/tickers?symbols=tBTCUSD", lambda a: a),
        "tickers_fusd_jkorf": (
            "/v2/tickers?symbols=ALL",
            lambda a: [r for r in a if r[0] == "fUSD"],
        ),
        "conf_pair_exchange_jkorf": ("/v2/conf/pub:list:pair:exchange", lambda a: a),
        "single_ticker_btcust_ccxt": ("/v2/ticker/tBTCUST", lambda a: a),
        "candles_1d_ethust_jkorf": (
            "/v2/candles/trade:1m:tETHUST/hist?limit=1",
            lambda a: a,
        ),
        "candles_1m_btcusd_2018_fixture": (
            "/v2/candles/trade:1m:tBTCUSD/hist?limit=3",
            lambda a: a,
        ),
        "error_10020_limit_invalid": ("/v2/candles/trade:1m:tBTCUSD/hist?limit=10001", lambda a: a),
        "error_20060_maintenance": ("fault:maintenance", lambda a: a),
        "error_rate_limit_object": ("fault:429", lambda a: a),
    },
    "cryptowatch": {
        "prices_2023_azgrom": ("/markets/prices", lambda a: a),
        "summaries_2023_azgrom": ("/markets/summaries", lambda a: a),
        "summaries_2023_keyby_id_azgrom": ("/markets/summaries?keyBy=id", lambda a: a),
        "single_price_2023_azgrom": ("/markets/kraken/btcusd/price", lambda a: a),
    },
}
DEMO_CASES = [(source, name) for source, routes in DEMO_ROUTES.items() for name in routes]


def expected_shape(source: str, name: str) -> Any:
    answer = recorded(source, name)
    if name == "tickers_btcusd_spot_and_truncated_bothan":
        answer = answer[:1] * 2  # the demo serves whole rows; the truncated one is a fault
    return shape(answer)


@pytest.mark.parametrize(("source", "name"), DEMO_CASES, ids=[n for _, n in DEMO_CASES])
async def test_the_demo_answers_in_the_recorded_shape(source: str, name: str) -> None:
    """The demo exchange's answer on the recorded route has the recording's form: the same
    fields in the same positions with the same JSON types, the same keys."""
    route, pick = DEMO_ROUTES[source][name]
    async with running_demo() as (exchange, url), aiohttp.ClientSession() as http:
        if route.startswith("fault:"):
            exchange.add_fault("bitfinex", route.removeprefix("fault:"), 1, None)
            route = "/v2/tickers?symbols=ALL"
        async with http.get(url + route) as response:
            answer = await response.json(content_type=None)
    assert shape(pick(answer)) == expected_shape(source, name)
