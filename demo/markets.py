"""The demo exchange's universe: realistic pairs, levels and the walks that move them.

Every asset has one USD level, a walk of its own; a market's price is its base's level over
its quote's, times a small spread of its own that keeps returning to 1, so the same pair on
several exchanges agrees within a fraction of a percent, as on real venues. A market can be
given a quirk (`Quirk`): a price that drifts away, a feed that freezes, a decimal slip.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# Base assets and their USD level; long names get Bitfinex's colon form (tDOGE:USD).
BASES = {
    "BTC": 40_000.0,
    "ETH": 2_500.0,
    "XRP": 0.6,
    "LTC": 70.0,
    "EOS": 0.8,
    "BCH": 240.0,
    "ETC": 18.0,
    "ZEC": 25.0,
    "XMR": 160.0,
    "NEO": 12.0,
    "OMG": 0.7,
    "TRX": 0.1,
    "ADA": 0.45,
    "SOL": 100.0,
    "DOT": 6.0,
    "UNI": 6.5,
    "XLM": 0.12,
    "FIL": 5.0,
    "ATO": 9.0,
    "AAVE": 95.0,
    "AVAX": 35.0,
    "DOGE": 0.08,
    "MATIC": 0.8,
    "SHIB": 0.00001,
    "LINK": 14.0,
    "NEAR": 3.0,
    "APT": 8.0,
    "ARB": 1.1,
    "SUSHI": 1.0,
    "COMP": 55.0,
    "CRV": 0.5,
    "YFI": 7_000.0,
    "TESTBTC": 40_000.0,
    "PEPE": 0.0000012,
    "BONK": 0.000015,
    "ALGO": 0.18,
    "EGLD": 45.0,
    "ICP": 9.0,
    "INJ": 25.0,
    "KSM": 30.0,
    "LUNA": 0.6,
    "MKR": 1_500.0,
    "QTUM": 3.0,
    "SAND": 0.45,
    "SNX": 3.0,
    "STX": 1.6,
    "SUI": 1.2,
    "TON": 2.3,
    "VET": 0.03,
    "WAVES": 2.0,
    "XTZ": 0.9,
    "ZRX": 0.35,
    "GRT": 0.2,
    "HBAR": 0.08,
    "IOTA": 0.25,
    "JASMY": 0.005,
    "LDO": 2.2,
    "MANA": 0.45,
    "OP": 2.5,
    "RUNE": 4.5,
    "SEI": 0.5,
    "TIA": 10.0,
    "TRB": 90.0,
    "UMA": 2.5,
    "WOO": 0.3,
    "XDC": 0.05,
    "ZIL": 0.02,
    "FTM": 0.4,
    "GALA": 0.03,
    "UST": 1.0,
}
QUOTES = {"USD": 1.0, "UST": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "BTC": 1 / 40_000.0}
# Assets whose USD level stays put: the dollar, the fiat quotes, the dollar stablecoin.
FIXED = frozenset({"USD", "EUR", "GBP", "JPY", "UST"})
# Cryptowatch names an asset as the world does where Bitfinex has its own code.
WORLD_NAMES = {"ATO": "atom", "UST": "usdt"}
FUNDING = ["fUSD", "fUST", "fBTC", "fETH", "fEUR", "fJPY", "fGBP", "fEOS", "fXRP", "fLTC"]
CRYPTOWATCH_EXCHANGES = ["kraken", "coinbase-pro", "binance", "bitstamp", "bitfinex"]


def bitfinex_symbol(base: str, quote: str) -> str:
    """`tBTCUSD`, or `tDOGE:USD` when a side is longer than three letters."""
    sep = ":" if len(base) > 3 or len(quote) > 3 else ""
    if base == "TESTBTC":
        quote = "TESTUSD"
        sep = ":"
    return f"t{base}{sep}{quote}"


@dataclass
class Quirk:
    """What is wrong with a market: `offset` (its price `percent` away from the others, at
    once), `drift` (the same, reached one percent per answer), `freeze` (the same price and
    volume in every answer), `slip` (a decimal slip: `factor` × the price)."""

    kind: str
    percent: float = 0.0
    factor: float = 100.0
    reached: float = 0.0  # how far a drift has got


@dataclass
class Walk:
    level: float
    volume: float
    # The assets' shared walks this market's level follows (base over quote), if any.
    base: Walk | None = None
    quote: Walk | None = None
    spread: float = 1.0
    quirk: Quirk | None = None

    def step(self, rng: random.Random, volatility: float) -> None:
        if self.quirk is not None and self.quirk.kind == "freeze":
            return
        self.volume = max(0.0, self.volume * math.exp(rng.gauss(0, 0.01)))
        if self.base is None or self.quote is None:
            self.level *= math.exp(rng.gauss(0, volatility))
            return
        # A spread that keeps returning to 1: the market stays with the others.
        self.spread = math.exp(0.8 * math.log(self.spread) + rng.gauss(0, volatility / 2))
        self.level = self.base.level / self.quote.level * self.spread * self.distortion()

    def distortion(self) -> float:
        quirk = self.quirk
        if quirk is None:
            return 1.0
        if quirk.kind == "slip":
            return quirk.factor
        if quirk.kind == "drift":
            quirk.reached = min(quirk.percent, quirk.reached + 1.0)
            return 1 + quirk.reached / 100
        if quirk.kind == "offset":
            return 1 + quirk.percent / 100
        return 1.0


@dataclass
class Assets:
    """Each asset's USD level, stepped once per answer: USD is 1, fiat fixed, the rest walk."""

    walks: dict[str, Walk] = field(default_factory=dict)

    @classmethod
    def of(cls, rng: random.Random) -> Assets:
        walks = {name: Walk(usd, 0.0) for name, usd in BASES.items()}
        for fiat, rate in QUOTES.items():
            if fiat not in walks:
                walks[fiat] = Walk(1 / rate, 0.0)
        return cls(walks)

    def step(self, rng: random.Random, volatility: float) -> None:
        for name, walk in self.walks.items():
            if name not in FIXED:
                walk.step(rng, volatility)

    def market(self, base: str, quote: str, volume: float) -> Walk:
        b, q = self.walks[base], self.walks[quote]
        return Walk(b.level / q.level, volume, b, q)


def bitfinex_universe(pairs: int, rng: random.Random, assets: Assets) -> dict[str, Walk]:
    walks: dict[str, Walk] = {}
    for quote in QUOTES:
        for base in BASES:
            if base == quote or len(walks) >= pairs:
                continue
            symbol = bitfinex_symbol(base, quote)
            walks.setdefault(symbol, assets.market(base, quote, rng.uniform(10, 100_000)))
    # Beyond the real combinations (~420), synthetic listings for load tests.
    for i in range(pairs - len(walks)):
        walks[f"tSYN{i:04d}:USD"] = Walk(rng.uniform(0.01, 1000), rng.uniform(10, 100_000))
    return walks


def world_name(code: str) -> str:
    return WORLD_NAMES.get(code, code.lower())


def cryptowatch_universe(
    rng: random.Random, assets: Assets, per_exchange: int = 30, markets: int | None = None
) -> dict[str, Walk]:
    """Cryptowatch's markets: the real bases on five exchanges, or, with `markets`, that many
    (the real bases first, then numbered tokens, each listed on every exchange as real assets
    are, at one level of its own: a scale test whose 20,000 markets make ~4,000 pairs)."""
    walks: dict[str, Walk] = {}
    for exchange in CRYPTOWATCH_EXCHANGES:
        for base in list(BASES)[:per_exchange]:
            pair = f"{world_name(base)}usd"
            walks[f"{exchange}:{pair}"] = assets.market(base, "USD", rng.uniform(10, 100_000))
    if markets is not None:
        walks = dict(list(walks.items())[:markets])
        for i in range(markets - len(walks)):
            exchange = CRYPTOWATCH_EXCHANGES[i % len(CRYPTOWATCH_EXCHANGES)]
            token = f"TOK{i // len(CRYPTOWATCH_EXCHANGES):05d}"
            if token not in assets.walks:
                assets.walks[token] = Walk(math.exp(rng.uniform(-8, 10)), 0.0)
            walks[f"{exchange}:{token.lower()}usd"] = assets.market(
                token, "USD", rng.uniform(10, 100_000)
            )
    return walks
