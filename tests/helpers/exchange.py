"""The demo exchange as a test reads and steers it, and the table beside what it served."""

from __future__ import annotations

from typing import Any

from common.db import Store
from common.models import Market
from fetcher.sources.bitfinex import is_derivative, symbol_of
from tests.helpers.processes import http_json


def control(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A call to the demo exchange at `base` (its /control/… routes, or its feeds)."""
    return http_json(base + path, body)


def last_price(url: str, symbol: str) -> float:
    rows = control(url, "/control/served")["tickers"]
    return float(next(r[7] for r in rows if isinstance(r, list) and r[0] == symbol))


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
