"""Cryptowatch REST format: `/markets/prices` (every last price) + `/markets/summaries` (volume)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fetcher.sources.base import GetJson, Parsed, quote

log = logging.getLogger(__name__)


class Cryptowatch:
    id = "cryptowatch"

    def __init__(self, base_url: str, direct: frozenset[str] = frozenset()) -> None:
        self.base_url = base_url.rstrip("/")
        # Exchanges fetched directly by another source: their Cryptowatch markets are dropped.
        self.direct = direct

    async def fetch(self, get: GetJson) -> Any:
        prices, summaries = await asyncio.gather(
            get("/markets/prices"), get("/markets/summaries"), return_exceptions=True
        )
        if isinstance(prices, BaseException):
            raise prices
        if isinstance(summaries, BaseException):
            # Prices are the point; volume can wait for the next tick.
            log.warning(
                "cryptowatch: summaries failed (%s); storing prices without volume", summaries
            )
            summaries = None
        return {"prices": prices, "summaries": summaries}

    def parse(self, payload: Any) -> Parsed:
        parsed = Parsed()
        prices = _result(payload.get("prices") if isinstance(payload, dict) else None)
        if prices is None:
            parsed.skip("answer has no result")
            return parsed
        volumes = _result(payload.get("summaries")) or {}
        for key, price in prices.items():
            kind, _, rest = key.partition(":")
            if kind != "market":
                continue  # index:... and other non-market keys
            exchange, _, pair = rest.partition(":")
            if not exchange or not pair:
                parsed.skip("malformed key")
                continue
            if exchange in self.direct:
                continue
            summary = volumes.get(f"{exchange}:{pair}")
            volume = summary.get("volume") if isinstance(summary, dict) else None
            quote(parsed, exchange, pair, price, volume)
        return parsed


def _result(answer: object) -> dict[str, Any] | None:
    result = answer.get("result") if isinstance(answer, dict) else None
    return result if isinstance(result, dict) else None
