"""Cryptowatch REST format: `/markets/prices` (every last price) + `/markets/summaries` (volume).

Every shape the API had: price keys `market:{exchange}:{pair}` and, in its 2016–17 form,
`{exchange}:{pair}`; `index:…` keys are not markets. Answers may come in pages (`cursor`:
`{"last": …, "hasMore": true}`), followed up to `MAX_PAGES`, and never twice to the same
cursor (a feed that repeats one would otherwise be asked `MAX_PAGES` times a tick).
Summaries are keyed by market (`kraken:btcusd`) or by market id (`"12": {…}`, mapped
through `/markets`). The `allowance` (CPU nanoseconds as integers in older answers, credits
as floats in later ones) is reported as a figure, never relied on. Each pair's base and
quote come from `/pairs` (read at start and every `IDS_REFRESH` seconds): a pair it does
not list has no split. Markets of exchanges fetched directly are kept aside as shadows, for
the cross-source check, never stored.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.parse
from typing import Any

from common.assets import cryptowatch_pairs, split
from fetcher.errors import SourceError, UnknownShape, classify, error_answer
from fetcher.sources.base import GetJson, Parsed, number, quote

log = logging.getLogger(__name__)
MAX_PAGES = 50
IDS_REFRESH = 600.0


def _checked(source: str, path: str, answer: Any) -> dict[str, Any]:
    """The answer's `result` mapping; its error (or an unknown shape) raised."""
    if error_answer(answer) is not None:
        error = classify(source, 200, answer)
        assert error is not None
        raise error
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict | list):
        raise UnknownShape(f"{source} {path}: no result in the answer", answer)
    return answer  # type: ignore[no-any-return]


class Cryptowatch:
    id = "cryptowatch"

    def __init__(self, base_url: str, direct: frozenset[str] = frozenset()) -> None:
        self.base_url = base_url.rstrip("/")
        # Exchanges fetched directly by another source: their Cryptowatch markets are dropped.
        self.direct = direct
        self.market_ids: dict[str, str] = {}  # id → "exchange:pair", from /markets
        self.ids_read = -math.inf  # monotonic time /markets was last read
        self.pair_assets: dict[str, tuple[str, str]] = {}  # pair → (base, quote), from /pairs
        self.pairs_read = -math.inf
        self.repeats_said: set[str] = set()  # paths whose repeated cursor was logged

    async def pages(self, get: GetJson, path: str) -> dict[str, Any]:
        """Every page of a result, merged: {"result": …, "allowance": …, "pages": n}."""
        result: dict[str, Any] = {}
        allowance: Any = None
        url = path
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            answer = _checked(self.id, path, await get(url))
            part = answer["result"]
            if not isinstance(part, dict):
                raise UnknownShape(f"{self.id} {path}: the result is not a mapping", answer)
            result.update(part)
            allowance = answer.get("allowance", allowance)
            cursor = answer.get("cursor")
            if not (isinstance(cursor, dict) and cursor.get("hasMore") and cursor.get("last")):
                return {"result": result, "allowance": allowance, "pages": page}
            last = str(cursor["last"])
            if last in seen:
                if path not in self.repeats_said:  # once per path, not once a tick
                    self.repeats_said.add(path)
                    log.warning(
                        "%s %s: page %d answered a cursor already followed; stopping there "
                        "(said once)",
                        self.id,
                        path,
                        page,
                    )
                return {"result": result, "allowance": allowance, "pages": page}
            seen.add(last)
            url = f"{path}?cursor={urllib.parse.quote(last)}"
        log.warning("%s %s: more than %d pages; the rest is left out", self.id, path, MAX_PAGES)
        return {"result": result, "allowance": allowance, "pages": MAX_PAGES, "truncated": True}

    async def _ids(self, get: GetJson, wanted: set[str]) -> dict[str, str]:
        """Market ids → `exchange:pair`, read from /markets when an id is new (at most every
        `IDS_REFRESH` seconds: an id /markets does not list is not asked about every tick)."""
        stale = time.monotonic() - self.ids_read > IDS_REFRESH
        if not wanted <= self.market_ids.keys() and stale:
            self.ids_read = time.monotonic()
            answer = _checked(self.id, "/markets", await get("/markets"))
            for market in answer["result"] if isinstance(answer["result"], list) else []:
                if isinstance(market, dict) and {"id", "exchange", "pair"} <= market.keys():
                    self.market_ids[str(market["id"])] = f"{market['exchange']}:{market['pair']}"
        return self.market_ids

    async def _pairs(self, get: GetJson) -> None:
        """Refresh each pair's base and quote from /pairs (a failure keeps the last known)."""
        if time.monotonic() - self.pairs_read <= IDS_REFRESH:
            return
        self.pairs_read = time.monotonic()
        try:
            listed = cryptowatch_pairs(_checked(self.id, "/pairs", await get("/pairs")))
        except SourceError as exc:
            log.warning("cryptowatch: /pairs not read (%s); pairs without a split", exc)
            return
        self.pair_assets |= listed

    async def fetch(self, get: GetJson) -> Any:
        await self._pairs(get)
        answers = await asyncio.gather(
            self.pages(get, "/markets/prices"),
            self.pages(get, "/markets/summaries"),
            return_exceptions=True,
        )
        prices: dict[str, Any] | BaseException = answers[0]
        summaries: dict[str, Any] | BaseException = answers[1]
        if isinstance(prices, BaseException):
            raise prices
        volumes: dict[str, Any] | None = None
        markets: dict[str, str] | None = None
        if isinstance(summaries, BaseException):
            # Prices are the point; volume can wait for the next tick.
            log.warning(
                "cryptowatch: summaries failed (%s); storing prices without volume", summaries
            )
        else:
            volumes = summaries
            if summaries["result"] and all(k.isdigit() for k in summaries["result"]):
                try:
                    markets = await self._ids(get, set(summaries["result"]))
                except SourceError as exc:
                    log.warning("cryptowatch: /markets failed (%s); no volume this tick", exc)
        return {"prices": prices, "summaries": volumes, "markets": markets}

    def parse(self, payload: Any) -> Parsed:
        if not isinstance(payload, dict) or not isinstance(payload.get("prices"), dict):
            raise UnknownShape("cryptowatch: no prices in the answer", payload)
        prices = _checked(self.id, "/markets/prices", payload["prices"])["result"]
        parsed = Parsed()
        volumes = summaries_by_market(payload.get("summaries"), payload.get("markets"), parsed)
        for key, price in prices.items():
            parts = key.split(":") if isinstance(key, str) else []
            if parts[:1] == ["market"]:
                parts = parts[1:]
            elif parts[:1] == ["index"]:
                parsed.ignore("index (not a market)")
                continue
            if len(parts) != 2 or not all(parts):
                parsed.skip("malformed key")
                continue
            exchange, pair = parts
            summary = volumes.get(f"{exchange}:{pair}")
            volume = summary.get("volume") if isinstance(summary, dict) else None
            assets = self.pair_assets.get(pair)
            market_split = split(exchange, *assets) if assets else None
            shadow = exchange in self.direct
            if shadow:
                parsed.ignore("fetched directly")
            quote(parsed, exchange, pair, price, volume, market_split, shadow)
        allowance = (payload["prices"].get("allowance") or {}) if payload["prices"] else {}
        remaining = number(allowance.get("remaining")) if isinstance(allowance, dict) else None
        if remaining is not None:
            parsed.figures["allowance_remaining"] = remaining
        if payload["prices"].get("truncated"):
            parsed.skip("beyond the last page followed")
        return parsed


def summaries_by_market(
    summaries: Any, markets: dict[str, str] | None, parsed: Parsed
) -> dict[str, Any]:
    """Summaries keyed `exchange:pair`, whatever their keys were (market, `market:…`, id)."""
    result = summaries.get("result") if isinstance(summaries, dict) else None
    if not isinstance(result, dict):
        return {}
    out: dict[str, Any] = {}
    for key, summary in result.items():
        if key.isdigit():
            name = (markets or {}).get(key)
            if name is None:
                parsed.skip("summary of an unknown market id")
                continue
            out[name] = summary
        else:
            out[key.removeprefix("market:")] = summary
    return out
