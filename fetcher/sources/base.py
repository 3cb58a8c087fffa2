"""What an exchange is to the fetcher: a base URL, the requests of one tick, a pure parser."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.assets import AGGREGATES, Split
from common.models import EXCHANGE_RE, SYMBOL_RE, Market, Quote

# Fetches one path of the source's API as parsed JSON (retries and deadlines are the caller's).
GetJson = Callable[[str], Awaitable[Any]]


@dataclass
class Parsed:
    """A source's answer for one tick: the good quotes; every row or key not turned into one,
    counted by reason — `skipped` (bad data: a warning) apart from `ignored` (not a market by
    design: funding rows, indexes, derivatives, exchanges fetched directly); and figures the
    answer carried (e.g. the remaining API allowance). `shadows` are the quotes of markets
    another source fetches directly (not stored: the cross-source check compares them), and
    `unsplit` the markets whose base and quote the exchange's listing does not tell."""

    quotes: list[Quote] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    shadows: list[Quote] = field(default_factory=list)

    @property
    def unsplit(self) -> list[str]:
        return [q.market.key for q in self.quotes if q.split is None]

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1


class Source(Protocol):
    id: str
    base_url: str

    async def fetch(self, get: GetJson) -> Any:
        """Make this tick's requests; returns the raw payload(s) `parse` takes."""
        ...

    def parse(self, payload: Any) -> Parsed:
        """Pure: payload → quotes. A bad row is skipped and counted, never the whole answer;
        an error answer or an unknown shape raises (fetcher.errors): a failed fetch."""
        ...


def number(value: object) -> float | None:
    """A finite JSON number, else None (null, strings, booleans, NaN are not prices)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return as_float if as_float == as_float and abs(as_float) != float("inf") else None


def quote(
    parsed: Parsed,
    exchange: str,
    symbol: str,
    price: object,
    volume: object,
    split: Split | None = None,
    shadow: bool = False,
) -> None:
    """Validate one row's fields and add its quote (to the shadows with `shadow`), or count
    why it was skipped."""
    if not EXCHANGE_RE.match(exchange) or not SYMBOL_RE.match(symbol) or exchange in AGGREGATES:
        parsed.skip("bad symbol")
        return
    last = number(price)
    if last is None:
        parsed.skip("no price")
        return
    if last <= 0:
        parsed.skip("price not positive")
        return
    vol = number(volume)
    found = Quote(Market(exchange, symbol), last, vol if vol is None or vol >= 0 else None, split)
    if shadow:
        parsed.shadows.append(found)
        return
    parsed.quotes.append(found)
