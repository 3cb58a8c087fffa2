"""Domain values shared by the services. Plain frozen dataclasses: thousands are made per tick."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from common.assets import Split

Metric = Literal["price", "volume"]
METRICS: tuple[Metric, ...] = ("price", "volume")

EXCHANGE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Lower-case pair, optionally with one colon (Bitfinex's `testbtc:testusd`).
SYMBOL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}(:[a-z0-9][a-z0-9._-]{0,47})?$")


@dataclass(frozen=True, slots=True, order=True)
class Market:
    exchange: str
    symbol: str

    @property
    def key(self) -> str:
        """`exchange:symbol` — the partition key of the market's points."""
        return f"{self.exchange}:{self.symbol}"

    @classmethod
    def from_key(cls, key: str) -> Market:
        exchange, _, symbol = key.partition(":")
        return cls(exchange, symbol)


@dataclass(frozen=True, slots=True)
class Quote:
    """One market's last price and 24h volume as an exchange reported them."""

    market: Market
    price: float
    volume: float | None
    split: Split | None = None  # base and quote, when the exchange's naming tells them


@dataclass(frozen=True, slots=True)
class Point:
    """A stored observation: a market's price and volume at a scheduled tick."""

    market: Market
    t: int
    price: float
    volume: float | None

    def value(self, metric: Metric) -> float | None:
        return self.price if metric == "price" else self.volume


@dataclass(frozen=True, slots=True)
class Alert:
    market: Market
    t: int
    price: float
    average: float
    points: int

    @property
    def id(self) -> str:
        return f"{self.market.key}:{self.t}"

    @property
    def ratio(self) -> float:
        return self.price / self.average
