"""Bitfinex public API v2: every trading pair in one `tickers?symbols=ALL` call."""

from __future__ import annotations

from typing import Any

from fetcher.sources.base import GetJson, Parsed, quote

# Trading rows: [SYMBOL, BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
#                LAST_PRICE, VOLUME, HIGH, LOW]; funding rows (f...) have 17 fields.
TRADING_FIELDS, LAST_PRICE, VOLUME = 11, 7, 8


def symbol_of(raw: str) -> str:
    """`tBTCUSD` → `btcusd`, `tTESTBTC:TESTUSD` → `testbtc:testusd`."""
    return raw[1:].lower()


class Bitfinex:
    id = "bitfinex"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def fetch(self, get: GetJson) -> Any:
        return await get("/v2/tickers?symbols=ALL")

    def parse(self, payload: Any) -> Parsed:
        parsed = Parsed()
        if not isinstance(payload, list):
            parsed.skip("answer is not a list")  # {"error": "ERR_RATE_LIMIT"} and the like
            return parsed
        if payload[:1] == ["error"]:  # ["error", 10020, "symbol: invalid"]
            parsed.skip("error answer")
            return parsed
        for row in payload:
            if not isinstance(row, list) or not row or not isinstance(row[0], str):
                parsed.skip("malformed row")
            elif row[0].startswith("f"):
                continue  # funding currency: not a market
            elif not row[0].startswith("t") or len(row) < TRADING_FIELDS:
                parsed.skip("malformed row")
            else:
                quote(parsed, self.id, symbol_of(row[0]), row[LAST_PRICE], row[VOLUME])
        return parsed
