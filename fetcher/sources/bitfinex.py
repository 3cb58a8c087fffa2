"""Bitfinex public API v2: every trading pair in one `tickers?symbols=ALL` call.

Spot pairs only: funding currencies (`f…`) and derivatives (perpetual futures such as
`tBTCF0:USTF0`, whose sides end in `F0`) are not markets here, and are counted as ignored.
"""

from __future__ import annotations

from typing import Any

from fetcher.errors import UnknownShape, classify, error_answer
from fetcher.sources.base import GetJson, Parsed, quote

# Trading rows: [SYMBOL, BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
#                LAST_PRICE, VOLUME, HIGH, LOW]; funding rows (f...) have 17 fields.
TRADING_FIELDS, LAST_PRICE, VOLUME = 11, 7, 8


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

    async def fetch(self, get: GetJson) -> Any:
        return await get("/v2/tickers?symbols=ALL")

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
            elif not row[0].startswith("t") or len(row) < TRADING_FIELDS:
                parsed.skip("malformed row")
            elif is_derivative(row[0]):
                parsed.ignore("derivative (not spot)")
            else:
                quote(parsed, self.id, symbol_of(row[0]), row[LAST_PRICE], row[VOLUME])
        return parsed
