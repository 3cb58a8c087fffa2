"""Any exchange ccxt knows (`TRACKER_SOURCES=ccxt:kraken`): `fetch_tickers` → spot markets.

An optional extra (`pip install '.[ccxt]'`): ccxt is imported only when such a source is
configured. ccxt makes its own requests (with its own rate limiter), so `fetch` does not use
the tick's `get`; a ccxt error becomes one log line and the next tick tries again.
`TRACKER_CCXT_URL` points every ccxt exchange's public API at another base (the demo
exchange, a proxy); unset, ccxt talks to the exchange itself.
"""

from __future__ import annotations

from typing import Any

from common.assets import Split, split
from fetcher.errors import (
    ExchangeRejected,
    ExchangeUnavailable,
    Maintenance,
    SourceError,
    UnknownShape,
)
from fetcher.sources.base import GetJson, Parsed, quote


def symbol_of(unified: str) -> str | None:
    """ccxt's `BTC/USD` → `btcusd`; derivatives (`BTC/USD:USD`) are not spot markets: None."""
    base, slash, quote_ = unified.partition("/")
    if not slash or ":" in quote_ or not base or not quote_:
        return None
    return (base + quote_).lower()


def split_of(exchange_id: str, unified: str) -> Split | None:
    """ccxt's unified `BASE/QUOTE` is already in common codes (its `commonCurrencies`)."""
    base, _, quote_ = unified.partition("/")
    return split(exchange_id, base, quote_)


class CcxtSource:
    def __init__(self, exchange_id: str, timeout: float, base_url: str | None = None) -> None:
        try:
            import ccxt.async_support as ccxt_async
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SourceError(
                f"ccxt:{exchange_id} needs the optional extra: pip install '.[ccxt]'"
            ) from exc
        if exchange_id not in ccxt_async.exchanges:
            raise SourceError(f"ccxt knows no exchange {exchange_id!r}")
        self.id = f"ccxt:{exchange_id}"
        self.exchange_id = exchange_id
        self.base_url = base_url or exchange_id
        self.client: Any = getattr(ccxt_async, exchange_id)(
            {"enableRateLimit": True, "timeout": int(timeout * 1000)}
        )
        if base_url:
            self.client.urls["api"] = {
                name: base_url.rstrip("/") for name in self.client.urls.get("api", {}) or {"public"}
            }
        self.ccxt = ccxt_async

    def error(self, exc: BaseException) -> SourceError:
        """ccxt's exception as the fetcher's error classes (fetcher/errors.py)."""
        ccxt, said = self.ccxt, f"{self.id}: {type(exc).__name__}: {str(exc)[:200]}"
        if isinstance(exc, ccxt.OnMaintenance):
            return Maintenance(said, type(exc).__name__, str(exc)[:200])
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            return ExchangeUnavailable(said, type(exc).__name__, reason="rate_limit")
        if isinstance(exc, ccxt.NetworkError):  # ExchangeNotAvailable, RequestTimeout, …
            return ExchangeUnavailable(said, type(exc).__name__)
        return ExchangeRejected(said, type(exc).__name__)  # BadSymbol, BadRequest, …

    async def fetch(self, get: GetJson) -> Any:
        try:
            return await self.client.fetch_tickers()
        except self.ccxt.BaseError as exc:
            raise self.error(exc) from exc

    def parse(self, payload: Any) -> Parsed:
        if not isinstance(payload, dict):
            raise UnknownShape(f"{self.id}: fetch_tickers did not answer a mapping", payload)
        parsed = Parsed()
        for unified, ticker in payload.items():
            symbol = symbol_of(unified) if isinstance(unified, str) else None
            if not isinstance(ticker, dict):
                parsed.skip("malformed ticker")
                continue
            if symbol is None:
                parsed.ignore("derivative (not spot)")
                continue
            price = ticker.get("last")
            if price is None:
                price = ticker.get("close")
            quote(
                parsed,
                self.exchange_id,
                symbol,
                price,
                ticker.get("baseVolume"),
                split_of(self.exchange_id, unified),
            )
        return parsed

    async def close(self) -> None:
        await self.client.close()
