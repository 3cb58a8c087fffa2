"""A fake exchange that speaks Bitfinex v2 and Cryptowatch REST, with faults on demand.

Every answer moves each market one step of a random walk. Control endpoints (JSON):
    POST /control/price  {"exchange": "bitfinex", "symbol": "btcusd", "price": 1.0}  next price once
                         (or "factor": 3.5 instead of "price": that multiple of the current one)
    POST /control/fault  {"source": "bitfinex"|"cryptowatch", "kind": K, "times": 1}
         K: 429, 429-retry-after, 500, 502, 503, html, timeout, truncated, bad-rows,
            zero-price, drop-pair, new-pair (the last two take "symbol"), and the exchanges'
            own answers: maintenance, invalid, ratelimit-array, empty
    POST /control/volatility {"volatility": 0.0}
    POST /control/cryptowatch {"keys": "market"|"legacy", "page_size": 0,
                               "summaries_by": "market"|"id", "repeat_cursor": false}
    POST /control/quirk {"exchange": "kraken", "symbol": "btcusd", "kind": K, "percent": 10}
         K: offset, drift (percent away from the others, at once or 1 % per answer), freeze
            (the same price and volume every answer), slip (× factor, 100), none;
         "volume": V also sets the market's 24 h volume
    GET  /control/served   the last answer of each route, as served
Every asset has one USD level (demo/markets.py): the same pair on several exchanges agrees
within a fraction of a percent, and Cryptowatch's `bitfinex:` markets are the direct ones.
`serve` (the demo) starts with three quirks: `DEMO_QUIRKS`.
Kraken's public API (`/0/public/Assets`, `/AssetPairs`, `/Ticker`), over the same walks as
the Cryptowatch `kraken:` markets, lets the ccxt source be tested offline.
Candles (`/v2/candles/trade:1m:tSYM/hist`) are a deterministic function of the pair and the
minute, around the pair's starting level, with an occasional minute without trades (no candle),
as on a quiet real pair; the "candles" fault source makes them fail like the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from demo.markets import (
    FUNDING,
    Assets,
    Quirk,
    Walk,
    bitfinex_symbol,
    bitfinex_universe,
    cryptowatch_universe,
)

log = logging.getLogger(__name__)

HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body>cloudflare</body></html>"
)
FAULTS = {
    "429",
    "429-retry-after",
    "500",
    "502",
    "503",
    "html",
    "timeout",
    "truncated",
    "bad-rows",
    "zero-price",
    "drop-pair",
    "new-pair",
    # The exchanges' own error answers (fetcher/errors.py classifies them).
    "maintenance",
    "invalid",
    "ratelimit-array",
    "empty",  # a well-formed answer with no market in it
}
# Each fault's error answer per source: (HTTP status, body), as the real APIs send them.
ERROR_ANSWERS: dict[str, dict[str, tuple[int, Any]]] = {
    "maintenance": {
        "bitfinex": (500, ["error", 20060, "maintenance"]),
        "cryptowatch": (503, {"error": "Service in maintenance"}),
    },
    "invalid": {
        "bitfinex": (500, ["error", 10020, "symbol: invalid"]),
        "cryptowatch": (404, {"error": "Route not found"}),
    },
    "ratelimit-array": {
        "bitfinex": (500, ["error", 11010, "ratelimit: error"]),
        "cryptowatch": (429, {"error": "Out of allowance"}),
    },
}


# What `make demo` shows across markets: one market drifting 12 % away from its pair's
# others (an outlier), one frozen (stale after TRACKER_STALE_AFTER), one with a decimal slip.
DEMO_QUIRKS = {
    ("binance", "ethusd"): Quirk("drift", percent=12),
    ("bitstamp", "ltcusd"): Quirk("freeze"),
    ("coinbase-pro", "xrpusd"): Quirk("slip", factor=100),
}
# Cryptowatch's allowance in its last form (credits as floats); older answers counted CPU
# nanoseconds as integers, which the parser's tests cover from recorded shapes.
ALLOWANCE = {"cost": 0.015, "remaining": 9.985, "upgrade": "For unlimited API access, sign up"}
CURRENCY_SYMBOLS = [["UST", "USDt"], ["UDC", "USDC"], ["EUT", "EURt"], ["DSH", "DASH"]]
CURRENCY_SYMBOLS += [["IOT", "IOTA"], ["ATO", "ATOM"], ["BTCF0", "BTC"], ["USTF0", "USDt0"]]


@dataclass
class DemoExchange:
    pairs: int = 300
    seed: int = 1
    cryptowatch_markets: int | None = None  # None: the real bases on five exchanges (150)
    volatility: float = 0.002
    timeout_seconds: float = 30.0
    rng: random.Random = field(init=False)
    bitfinex: dict[str, Walk] = field(init=False)
    cryptowatch: dict[str, Walk] = field(init=False)
    faults: dict[str, deque[str]] = field(
        default_factory=lambda: {"bitfinex": deque(), "cryptowatch": deque(), "candles": deque()}
    )
    origins: dict[str, float] = field(init=False)
    next_price: dict[str, float] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)
    # Cryptowatch's shapes over its life (POST /control/cryptowatch): price keys with or
    # without `market:`, answers in pages of `page_size` keys, summaries keyed by market id.
    cw_keys: str = "market"
    cw_page_size: int = 0
    cw_summaries_by: str = "market"
    cw_repeat_cursor: bool = False  # a feed whose next page answers the same cursor again
    cw_pending: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    assets: Assets = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 (seeded on purpose: a repeatable demo)
        self.assets = Assets.of(self.rng)
        self.bitfinex = bitfinex_universe(self.pairs, self.rng, self.assets)
        self.cryptowatch = cryptowatch_universe(
            self.rng, self.assets, markets=self.cryptowatch_markets
        )
        # Cryptowatch's bitfinex markets are Bitfinex's own: one walk, two routes to it.
        direct = {s[1:].lower(): walk for s, walk in self.bitfinex.items()}
        for key in self.cryptowatch:
            exchange, _, pair = key.partition(":")
            if exchange == "bitfinex" and pair in direct:
                self.cryptowatch[key] = direct[pair]
        self.origins = {symbol: walk.level for symbol, walk in self.bitfinex.items()}

    # -- answers ------------------------------------------------------------------------------
    def _price(self, key: str, walk: Walk) -> float:
        walk.step(self.rng, self.volatility)
        spike = self.next_price.pop(key, None)
        return spike if spike is not None else walk.level

    @staticmethod
    def ticker(last: float, volume: float) -> list[Any]:
        """Bitfinex's ten ticker fields (`GET /v2/ticker/tSYM`; `tickers` puts SYMBOL first)."""
        spread = last * 0.0005
        return [
            last - spread,
            12.5,
            last + spread,
            9.1,
            last * 0.01,
            0.01,
            last,
            volume,
            last * 1.02,
            last * 0.98,
        ]

    def tickers(self, fault: str | None) -> list[list[Any]]:
        self.assets.step(self.rng, self.volatility)
        rows: list[list[Any]] = []
        for symbol, walk in self.bitfinex.items():
            rows.append([symbol, *self.ticker(self._price(symbol, walk), walk.volume)])
        # A perpetual future, as real lists hold: not a spot market (ignored by the fetcher).
        rows.append(
            [
                "tBTCF0:USTF0",
                40000.0,
                5.1,
                40010.0,
                4.2,
                700.1,
                0.07,
                40005.0,
                2041.2,
                41000.0,
                39000.0,
            ]
        )
        if fault == "zero-price" and rows:
            rows[0][7] = 0
        if fault == "bad-rows":
            rows.insert(1, ["tNULLUSD", None, None, None, None, None, None, None, None, None, None])
            rows.insert(3, ["tSHORTUSD", 1.0, 2.0])
            rows.insert(5, "garbage")  # type: ignore[arg-type]  # a malformed row on purpose
        for i, funding in enumerate(FUNDING):
            rows.append(
                [
                    funding,
                    0.0002,
                    0.00019,
                    30,
                    1e6,
                    0.0002,
                    2,
                    5e5,
                    0.0,
                    0.0,
                    0.0002,
                    1e7,
                    0.0003,
                    0.0001,
                    None,
                    None,
                    1e6 + i,
                ]
            )
        return rows

    def prices(self, fault: str | None) -> dict[str, Any]:
        self.assets.step(self.rng, self.volatility)
        result: dict[str, float] = {}
        for key, walk in self.cryptowatch.items():
            result[f"market:{key}"] = self._price(f"cw:{key}", walk)
        if fault == "zero-price" and result:
            result[next(iter(result))] = 0
        result["index:kraken-futures:fi_xbtusd_180615"] = 6432.1
        return {"result": result, "allowance": ALLOWANCE}

    def market_ids(self) -> dict[str, int]:
        """Cryptowatch's numeric market ids (`exchange:pair` → id), stable for a universe."""
        return {key: i for i, key in enumerate(sorted(self.cryptowatch), start=1)}

    def first_page(self, name: str, answer: dict[str, Any], by_id: bool = False) -> dict[str, Any]:
        """`answer` in the configured shape; the first page of it when paging. The whole
        answer, as served across its pages, is kept under `served[name]`."""
        result = answer["result"]
        if name == "prices" and self.cw_keys == "legacy":
            result = {k.removeprefix("market:"): v for k, v in result.items()}
        if name == "summaries" and (by_id or self.cw_summaries_by == "id"):
            ids = self.market_ids()
            result = {str(ids[k]): v for k, v in result.items()}
        whole = {"result": result, "allowance": answer["allowance"]}
        self.served[name] = whole
        if not self.cw_page_size:  # one page, with the cursor the 2023 API sent on every one
            return whole | {"cursor": {"last": f"{name}-end", "hasMore": False}}
        return self.page(name, list(result.items()), whole["allowance"])

    def page(
        self, name: str, items: list[tuple[str, Any]], allowance: Any, cursor: str | None = None
    ) -> dict[str, Any]:
        size = self.cw_page_size
        body: dict[str, Any] = {"result": dict(items[:size]), "allowance": allowance}
        cursor = cursor or f"{name}-{self.rng.getrandbits(48):x}"
        if items[size:]:
            self.cw_pending[cursor] = items[size:]
        body["cursor"] = {"last": cursor, "hasMore": bool(items[size:])}
        return body

    def next_page(self, name: str, cursor: str) -> dict[str, Any] | None:
        items = self.cw_pending.get(cursor) if self.cw_repeat_cursor else None
        if items is not None:  # a broken feed: the same page and cursor again, for ever
            self.served[f"{name} repeats"] = self.served.get(f"{name} repeats", 0) + 1
            return self.page(name, items, {"cost": 0.005, "remaining": 9.9}, cursor)
        items = self.cw_pending.pop(cursor, None)
        if items is None or not cursor.startswith(name):
            return None
        return self.page(name, items, {"cost": 0.005, "remaining": 9.9})

    def pair_listing(self) -> dict[str, Any]:
        """Cryptowatch's `/pairs`: every pair its markets trade, with base and quote."""
        pairs: dict[str, tuple[str, str]] = {}
        for key in self.cryptowatch:
            pair = key.partition(":")[2]
            for quote in ("usdt", "usd"):
                if pair.endswith(quote) and len(pair) > len(quote):
                    pairs.setdefault(pair, (pair[: -len(quote)], quote))
                    break
        listed = [
            {
                "id": i,
                "symbol": pair,
                "base": {"id": 2 * i, "symbol": base, "name": base.upper(), "fiat": False},
                "quote": {"id": 98, "symbol": quote, "name": quote.upper(), "fiat": quote == "usd"},
                "route": f"https://api.cryptowat.ch/pairs/{pair}",
            }
            for i, (pair, (base, quote)) in enumerate(sorted(pairs.items()), start=1)
        ]
        listed.append(  # a futures pair, as the real listing has: not spot
            {
                "id": 9999,
                "symbol": "btcusd-weekly-futures",
                "base": {"id": 60, "symbol": "btc", "name": "Bitcoin", "fiat": False},
                "quote": {"id": 98, "symbol": "usd", "name": "United States Dollar", "fiat": True},
                "futuresContractPeriod": "weekly",
            }
        )
        return {"result": listed, "allowance": {"cost": 0.002, "remaining": 9.9}}

    def conf(self, keys: list[str]) -> list[Any] | None:
        """Bitfinex's `conf`: one list per key asked, in order; None for an unknown key."""
        answers: list[Any] = []
        for key in keys:
            if key == "pub:list:pair:exchange":
                answers.append([s[1:] for s in self.bitfinex])
            elif key == "pub:map:currency:sym":
                answers.append(CURRENCY_SYMBOLS)
            else:
                return None
        return answers

    def set_quirk(
        self, exchange: str, symbol: str, quirk: Quirk | None, volume: float | None = None
    ) -> str:
        key, walk = self._market(exchange, symbol)
        walk.quirk = quirk
        if volume is not None:
            walk.volume = volume
        return key

    def summaries(self) -> dict[str, Any]:
        result = {
            key: {
                "price": {
                    "last": w.level,
                    "high": w.level * 1.02,
                    "low": w.level * 0.98,
                    "change": {"percentage": 0.01, "absolute": w.level * 0.01},
                },
                "volume": w.volume,
                "volumeBase": w.volume,
                "volumeQuote": w.volume * w.level,
                "volumeUSD": w.volume * w.level,
            }
            for key, w in self.cryptowatch.items()
        }
        return {"result": result, "allowance": ALLOWANCE}

    def candles(
        self, symbol: str, start_ms: int, end_ms: int, limit: int, ascending: bool
    ) -> list[list[float]]:
        """1-minute candles [MTS, OPEN, CLOSE, HIGH, LOW, VOLUME] with start <= MTS <= end."""
        origin = self.origins.get(symbol)
        if origin is None:
            return []
        now_minute = int(time.time()) // 60 * 60
        first = max(math.ceil(start_ms / 60_000), 0) * 60
        last = min(end_ms // 60_000 * 60, now_minute)
        minutes = range(first, last + 1, 60) if ascending else range(last, first - 1, -60)
        rows: list[list[float]] = []
        for minute in minutes:
            rng = random.Random(f"{self.seed}:{symbol}:{minute}")  # noqa: S311 (repeatable)
            if rng.random() < 0.03:
                continue  # no trade in this minute: Bitfinex serves no candle for it
            close = candle_level(origin, minute)
            open_ = close * (1 + rng.uniform(-0.001, 0.001))
            volume = rng.uniform(0.1, 10.0)
            rows.append([minute * 1000, open_, close, max(open_, close), min(open_, close), volume])
            if len(rows) >= limit:
                break
        return rows

    # -- Kraken (for ccxt) --------------------------------------------------------------------
    def kraken_pairs(self) -> dict[str, tuple[str, str, str]]:
        """Kraken pair name → (base asset, quote asset, key of the Cryptowatch walk), in
        Kraken's own naming."""
        pairs: dict[str, tuple[str, str, str]] = {}
        for key in self.cryptowatch:
            exchange, _, pair = key.partition(":")
            if exchange == "kraken" and pair.endswith("usd"):
                base, quote = kraken_asset(pair[:-3].upper()), "ZUSD"
                pairs[base + quote if len(base) == 4 else base + "USD"] = (base, quote, key)
        return pairs

    def kraken_assets(self) -> dict[str, Any]:
        assets = {
            asset for base, quote, _ in self.kraken_pairs().values() for asset in (base, quote)
        }
        return {
            "error": [],
            "result": {
                a: {
                    "aclass": "currency",
                    "altname": kraken_altname(a),
                    "decimals": 10,
                    "display_decimals": 5,
                    "status": "enabled",
                }
                for a in sorted(assets)
            },
        }

    def kraken_asset_pairs(self) -> dict[str, Any]:
        result = {}
        for name, (base, quote, _) in self.kraken_pairs().items():
            alt = kraken_altname(base) + kraken_altname(quote)
            result[name] = {
                "altname": alt,
                "wsname": f"{kraken_altname(base)}/{kraken_altname(quote)}",
                "aclass_base": "currency",
                "base": base,
                "aclass_quote": "currency",
                "quote": quote,
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": 5,
                "lot_decimals": 8,
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": [[0, 0.26], [50000, 0.24]],
                "fees_maker": [[0, 0.16], [50000, 0.14]],
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": "0.0001",
                "costmin": "0.5",
                "tick_size": "0.00001",
                "status": "online",
            }
        return {"error": [], "result": result}

    def kraken_ticker(self) -> dict[str, Any]:
        result = {}
        for name, (_, _, key) in self.kraken_pairs().items():
            walk = self.cryptowatch[key]
            last = self._price(f"cw:{key}", walk)
            text = f"{last:.10g}"
            result[name] = {
                "a": [f"{last * 1.0005:.10g}", "1", "1.000"],
                "b": [f"{last * 0.9995:.10g}", "1", "1.000"],
                "c": [text, "0.01"],
                "v": [f"{walk.volume / 2:.8f}", f"{walk.volume:.8f}"],
                "p": [text, text],
                "t": [1200, 2400],
                "l": [f"{last * 0.98:.10g}"] * 2,
                "h": [f"{last * 1.02:.10g}"] * 2,
                "o": text,
            }
        return {"error": [], "result": result}

    # -- control ------------------------------------------------------------------------------
    def _market(self, exchange: str, symbol: str) -> tuple[str, Walk]:
        """A market's key (as `next_price` names it) and its walk; KeyError if unknown."""
        if exchange == "bitfinex":
            key = next((s for s in self.bitfinex if s[1:].lower() == symbol), None)
            if key is not None:
                return key, self.bitfinex[key]
        if f"{exchange}:{symbol}" in self.cryptowatch:  # Cryptowatch lists bitfinex too
            return f"cw:{exchange}:{symbol}", self.cryptowatch[f"{exchange}:{symbol}"]
        raise KeyError(f"{exchange}:{symbol}")

    def set_price(
        self, exchange: str, symbol: str, price: float | None = None, factor: float | None = None
    ) -> tuple[str, float]:
        """Serve `price`, or `factor` × the market's current level, as its next price, once."""
        key, walk = self._market(exchange, symbol)
        if price is None:
            if factor is None:
                raise ValueError("give a price or a factor")
            price = walk.level * factor
        self.next_price[key] = price
        return key, price

    def add_fault(self, source: str, kind: str, times: int, symbol: str | None) -> None:
        if kind not in FAULTS or source not in self.faults:
            raise ValueError(f"unknown fault {kind!r} or source {source!r}")
        if kind == "drop-pair":
            self.bitfinex.pop(_bitfinex_key(self.bitfinex, symbol or ""), None)
        elif kind == "new-pair":
            base, _, quote = (symbol or "newusd").upper().partition(":")
            name = bitfinex_symbol(base, quote) if quote else f"t{base}"
            self.bitfinex[name] = Walk(1.0, 100.0)
        else:
            self.faults[source].extend([kind] * times)


KRAKEN_ASSETS = {"BTC": "XXBT", "ETH": "XETH", "LTC": "XLTC", "XRP": "XXRP", "XMR": "XXMR"}


def kraken_asset(code: str) -> str:
    """Kraken's asset name: the old X-prefixed ones for the first listings (XXBT for BTC)."""
    return KRAKEN_ASSETS.get(code, code)


def kraken_altname(asset: str) -> str:
    return asset[1:] if len(asset) == 4 and asset[0] in "XZ" and asset != "XTZ" else asset


def describe(quirk: Quirk) -> str:
    return {
        "drift": f"drifts {quirk.percent:g} % away from the pair's other markets",
        "offset": f"stands {quirk.percent:g} % away from the pair's other markets",
        "freeze": "freezes: the same price and volume in every answer",
        "slip": f"has a decimal slip: {quirk.factor:g} × its price",
    }.get(quirk.kind, "")


def candle_level(origin: float, minute: int) -> float:
    """A smooth deterministic path around `origin`: two slow waves, ±3 %."""
    return origin * (1 + 0.02 * math.sin(minute / 5400) + 0.01 * math.sin(minute / 700))


def _bitfinex_key(walks: dict[str, Walk], symbol: str) -> str:
    return next((s for s in walks if s[1:].lower() == symbol), "")


def make_app(exchange: DemoExchange) -> web.Application:
    async def faulty(source: str, route: str, answer: Any) -> web.Response:
        queue = exchange.faults[source]
        fault = queue.popleft() if queue else None
        if fault in ("429", "429-retry-after"):
            headers = {"Retry-After": "1"} if fault == "429-retry-after" else {}
            error = (
                {"error": "ERR_RATE_LIMIT"}
                if source == "bitfinex"
                else {"error": "Out of allowance"}
            )
            return web.json_response(error, status=429, headers=headers)
        if fault == "500":  # Bitfinex's "unknown error": transient
            return web.json_response(["error", 10000, "unknown error"], status=500)
        if fault in ("502", "503"):  # a proxy in front of the API: not JSON at all
            return web.Response(body=f"{fault} Service Unavailable".encode(), status=int(fault))
        if fault == "empty":
            empty: Any = [] if source == "bitfinex" else {"result": {}, "allowance": {}}
            return web.json_response(empty)
        if fault in ERROR_ANSWERS:
            status, error = ERROR_ANSWERS[fault][source if source != "candles" else "bitfinex"]
            return web.json_response(error, status=status)
        if fault == "html":
            return web.Response(body=HTML_ERROR, status=200, content_type="text/html")
        if fault == "timeout":
            # Hang past the client's timeout; the client is gone by then, so serve nothing.
            await asyncio.sleep(exchange.timeout_seconds)
            return web.Response(status=504)
        body = answer(fault)
        exchange.served[route] = body
        text = json.dumps(body).encode()
        if fault == "truncated":
            text = text[: len(text) // 2]
        return web.Response(body=text, content_type="application/json")

    async def tickers(request: web.Request) -> web.Response:
        wanted = request.query.get("symbols", "ALL")
        if wanted != "ALL":
            names = set(wanted.split(","))
            return web.json_response([r for r in exchange.tickers(None) if r[0] in names])
        return await faulty("bitfinex", "tickers", exchange.tickers)

    async def status(_: web.Request) -> web.Response:
        return web.json_response([1])

    async def candles(request: web.Request) -> web.Response:
        parts = request.match_info["key"].split(":", 2)  # trade:1m:tTESTBTC:TESTUSD
        symbol = parts[2] if len(parts) == 3 else ""
        if parts[:2] != ["trade", "1m"]:
            return web.json_response(["error", 10020, "time frame: invalid"], status=500)
        try:
            start = int(request.query.get("start", "0"))
            end = int(request.query.get("end", str(int(time.time() * 1000))))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return web.json_response(["error", 10020, "start: invalid"], status=500)
        if limit > 10_000:
            return web.json_response(["error", 10020, "limit: invalid"], status=500)
        ascending = request.query.get("sort") == "1"
        return await faulty(
            "candles",
            "candles",
            lambda _: exchange.candles(symbol, start, end, limit, ascending),
        )

    async def kraken_assets(_: web.Request) -> web.Response:
        return web.json_response(exchange.kraken_assets())

    async def kraken_asset_pairs(_: web.Request) -> web.Response:
        return web.json_response(exchange.kraken_asset_pairs())

    async def kraken_ticker(_: web.Request) -> web.Response:
        exchange.served["kraken"] = answer = exchange.kraken_ticker()
        return web.json_response(answer)

    def later_page(name: str, cursor: str) -> web.Response:
        body = exchange.next_page(name, cursor)
        if body is None:
            return web.json_response({"error": "cursor: invalid"}, status=400)
        return web.json_response(body)

    async def prices(request: web.Request) -> web.Response:
        if "cursor" in request.query:
            return later_page("prices", request.query["cursor"])
        return await faulty(
            "cryptowatch",
            "prices page",
            lambda f: exchange.first_page("prices", exchange.prices(f)),
        )

    async def summaries(request: web.Request) -> web.Response:
        if "cursor" in request.query:
            return later_page("summaries", request.query["cursor"])
        by_id = request.query.get("keyBy") == "id"
        return web.json_response(exchange.first_page("summaries", exchange.summaries(), by_id))

    async def markets(_: web.Request) -> web.Response:
        listed = [
            {"id": i, "exchange": key.split(":")[0], "pair": key.split(":")[1], "active": True}
            for key, i in exchange.market_ids().items()
        ]
        return web.json_response({"result": listed})

    async def control_cryptowatch(request: web.Request) -> web.Response:
        body = await request.json()
        exchange.cw_keys = str(body.get("keys", exchange.cw_keys))
        exchange.cw_page_size = int(body.get("page_size", exchange.cw_page_size))
        exchange.cw_summaries_by = str(body.get("summaries_by", exchange.cw_summaries_by))
        exchange.cw_repeat_cursor = bool(body.get("repeat_cursor", exchange.cw_repeat_cursor))
        return web.json_response({"ok": True})

    async def control_price(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            key, price = exchange.set_price(
                body.get("exchange", "bitfinex"),
                str(body["symbol"]).lower(),
                float(body["price"]) if "price" in body else None,
                float(body["factor"]) if "factor" in body else None,
            )
        except KeyError as exc:
            return web.json_response({"error": f"unknown market {exc}"}, status=404)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "key": key, "price": price})

    async def control_fault(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            exchange.add_fault(
                body.get("source", "bitfinex"),
                body["kind"],
                int(body.get("times", 1)),
                body.get("symbol"),
            )
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def control_quirk(request: web.Request) -> web.Response:
        body = await request.json()
        kind = str(body.get("kind", "none"))
        if kind not in ("offset", "drift", "freeze", "slip", "none"):
            return web.json_response({"error": f"unknown quirk {kind!r}"}, status=400)
        quirk = None
        if kind != "none":
            quirk = Quirk(kind, float(body.get("percent", 0)), float(body.get("factor", 100)))
        try:
            key = exchange.set_quirk(
                str(body.get("exchange", "bitfinex")),
                str(body["symbol"]).lower(),
                quirk,
                float(body["volume"]) if "volume" in body else None,
            )
        except KeyError as exc:
            return web.json_response({"error": f"unknown market {exc}"}, status=404)
        return web.json_response({"ok": True, "key": key, "kind": kind})

    async def conf(request: web.Request) -> web.Response:
        answer = exchange.conf(request.match_info["keys"].split(","))
        if answer is None:
            return web.json_response(["error", 10020, "keys: invalid"], status=500)
        return web.json_response(answer)

    async def single_ticker(request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        walk = exchange.bitfinex.get(symbol)
        if walk is None:
            return web.json_response(["error", 10020, "symbol: invalid"], status=500)
        return web.json_response(exchange.ticker(walk.level, walk.volume))

    async def single_price(request: web.Request) -> web.Response:
        key = f"{request.match_info['exchange']}:{request.match_info['pair']}"
        walk = exchange.cryptowatch.get(key)
        if walk is None:
            return web.json_response({"error": "Route not found"}, status=404)
        allowance = {"cost": 0.005, "remaining": 9.995, "upgrade": "demo"}
        return web.json_response({"result": {"price": walk.level}, "allowance": allowance})

    async def pair_listing(_: web.Request) -> web.Response:
        return web.json_response(exchange.pair_listing())

    async def control_volatility(request: web.Request) -> web.Response:
        exchange.volatility = float((await request.json())["volatility"])
        return web.json_response({"ok": True})

    async def served(_: web.Request) -> web.Response:
        return web.json_response(exchange.served)

    hooks: list[dict[str, Any]] = []  # what the demo's webhook sink received, newest last

    async def webhook(request: web.Request) -> web.Response:
        """A sink for users' webhooks in the demo: POST /webhooks/<anything> is recorded (its
        headers and raw body, to verify the signature with) and answered 200."""
        body = await request.read()
        hooks.append(
            {
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode(errors="replace"),
            }
        )
        del hooks[:-100]
        return web.json_response({"ok": True})

    async def received(_: web.Request) -> web.Response:
        return web.json_response({"webhooks": hooks})

    async def not_found(_: web.Request) -> web.Response:
        return web.json_response({"error": "Route not found"}, status=404)

    app = web.Application()
    app.router.add_get("/v2/tickers", tickers)
    app.router.add_get("/v2/platform/status", status)
    app.router.add_get("/v2/conf/{keys}", conf)
    app.router.add_get("/v2/ticker/{symbol}", single_ticker)
    app.router.add_get("/v2/candles/{key}/hist", candles)
    app.router.add_get("/0/public/Assets", kraken_assets)
    app.router.add_get("/0/public/AssetPairs", kraken_asset_pairs)
    app.router.add_get("/0/public/Ticker", kraken_ticker)
    app.router.add_get("/markets/prices", prices)
    app.router.add_get("/markets/summaries", summaries)
    app.router.add_get("/markets", markets)
    app.router.add_get("/markets/{exchange}/{pair}/price", single_price)
    app.router.add_get("/pairs", pair_listing)
    app.router.add_post("/control/cryptowatch", control_cryptowatch)
    app.router.add_post("/control/price", control_price)
    app.router.add_post("/control/fault", control_fault)
    app.router.add_post("/control/volatility", control_volatility)
    app.router.add_post("/control/quirk", control_quirk)
    app.router.add_get("/control/served", served)
    app.router.add_post("/webhooks/{name}", webhook)
    app.router.add_get("/control/webhooks", received)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


@asynccontextmanager
async def running(
    pairs: int = 300, seed: int = 1, port: int = 0, timeout_seconds: float = 30.0
) -> AsyncIterator[tuple[DemoExchange, str]]:
    """The demo exchange in this process's loop (tests, benchmarks): (exchange, base URL)."""
    exchange = DemoExchange(pairs=pairs, seed=seed, timeout_seconds=timeout_seconds)
    runner = web.AppRunner(make_app(exchange), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield exchange, f"http://127.0.0.1:{bound}"
    finally:
        await runner.cleanup()


def serve(
    host: str, port: int, pairs: int = 300, seed: int = 1, cryptowatch_markets: int | None = None
) -> None:
    exchange = DemoExchange(pairs=pairs, seed=seed, cryptowatch_markets=cryptowatch_markets)
    for (name, symbol), quirk in DEMO_QUIRKS.items():
        if f"{name}:{symbol}" in exchange.cryptowatch:
            exchange.set_quirk(name, symbol, quirk)
            log.info("demo exchange: %s:%s %s", name, symbol, describe(quirk))
    log.info(
        "demo exchange: %d Bitfinex pairs, %d Cryptowatch markets on http://%s:%d",
        len(exchange.bitfinex),
        len(exchange.cryptowatch),
        host,
        port,
    )
    web.run_app(make_app(exchange), host=host, port=port, print=None, access_log=None)
