"""Bitfinex public API v2: every trading pair in one `tickers?symbols=ALL` call.

Spot pairs only: funding currencies (`f…`) and derivatives (perpetual futures such as
`tBTCF0:USTF0`, whose sides end in `F0`) are not markets here, and are counted as ignored.
Each market's base and quote follow Bitfinex's naming rule (common/assets.py), checked
against its `pub:list:pair:exchange` list and renamed through `pub:map:currency:sym`, both
read with one `conf` request at start and every `LISTING_REFRESH` seconds.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from common.assets import bitfinex_listing, split_bitfinex
from fetcher.errors import SourceError, UnknownShape, classify, error_answer
from fetcher.sources.base import GetJson, Parsed, quote

log = logging.getLogger(__name__)
# A ticker, as `GET /v2/ticker/tSYM` answers it: [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE,
# DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]; in `tickers` each row has the SYMBOL
# in front (11 fields), and funding rows (f...) have 17.
TICKER_FIELDS, LAST_PRICE, VOLUME = 10, 6, 7
LISTING = "/v2/conf/pub:list:pair:exchange,pub:map:currency:sym"
LISTING_REFRESH = 600.0


def symbol_of(raw: str) -> str:
    """`tBTCUSD` → `btcusd`, `tTESTBTC:TESTUSD` → `testbtc:testusd`."""
    return raw[1:].lower()


def is_derivative(raw: str) -> bool:
    """`tBTCF0:USTF0` (a perpetual future): a side ending in F0."""
    return any(side.endswith("F0") for side in raw[1:].split(":"))


class Bitfinex:
    id = "bitfinex"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.listed: frozenset[str] | None = None  # pairs Bitfinex lists, as symbols
        self.renames: dict[str, str] = {}  # Bitfinex currency code → the world's
        self.listing_read = -math.inf  # monotonic time the listing was last asked for

    async def fetch(self, get: GetJson) -> Any:
        if time.monotonic() - self.listing_read > LISTING_REFRESH:
            self.listing_read = time.monotonic()
            try:
                self.listed, self.renames = bitfinex_listing(await get(LISTING))
            except SourceError as exc:  # the naming rule alone until the next refresh
                log.warning("bitfinex: pair listing not read (%s); splitting by name", exc)
        return await get("/v2/tickers?symbols=ALL")

    def ticker(self, parsed: Parsed, raw: str, fields: list[Any]) -> None:
        """One ticker's quote (`fields` without the SYMBOL) into `parsed`."""
        symbol = symbol_of(raw)
        split = split_bitfinex(symbol, self.listed, self.renames)
        quote(parsed, self.id, symbol, fields[LAST_PRICE], fields[VOLUME], split)

    def parse_ticker(self, raw: str, payload: Any) -> Parsed:
        """`GET /v2/ticker/{raw}`: one market's ten fields."""
        if error_answer(payload) is not None:
            error = classify(self.id, 200, payload)
            assert error is not None
            raise error
        if not isinstance(payload, list) or len(payload) < TICKER_FIELDS:
            raise UnknownShape(f"bitfinex: the ticker answer of {raw} is not 10 fields", payload)
        parsed = Parsed()
        self.ticker(parsed, raw, payload)
        return parsed

    def parse(self, payload: Any) -> Parsed:
        if error_answer(payload) is not None:  # ["error", 20060, "maintenance"] with a 200
            error = classify(self.id, 200, payload)
            assert error is not None
            raise error
        if not isinstance(payload, list):
            raise UnknownShape("bitfinex: the tickers answer is not a list", payload)
        parsed = Parsed()
        for row in payload:
            if not isinstance(row, list) or not row or not isinstance(row[0], str):
                parsed.skip("malformed row")
            elif row[0].startswith("f"):
                parsed.ignore("funding (not a market)")
            elif not row[0].startswith("t") or len(row) < TICKER_FIELDS + 1:
                parsed.skip("malformed row")
            elif is_derivative(row[0]):
                parsed.ignore("derivative (not spot)")
            else:
                self.ticker(parsed, row[0], row[1:])
        return parsed
