"""Cross-market figures: one pair over every market that trades it, one asset over its pairs.

Pure functions over one tick's values (the contract's "Cross-market figures" section is the
specification; docs/data-model.md gives the reasons for each threshold):

- a constituent is `no_volume` (24 h volume 0 or missing), else `stale` (price and volume
  unchanged for `stale_after` seconds), else — with at least three such candidates — compared
  with `ref`, the volume-weighted median price of the *other* candidates: `gross` when
  |log10(p/ref)| ≥ 1, `outlier` when |ln(p/ref)| > ln(1 + percent/100) (a market that was one
  at its previous point stays one until |ln(p/ref)| ≤ ln(1 + percent/200)), else `used`;
- the pair's `price` is the volume-weighted mean of the used prices, `median` their
  volume-weighted median, `volume` the base volumes of the used and outlier constituents.

Every status is decided exactly: volumes are summed on a common integer grid (a float is an
integer times a power of two), and a price ratio near a threshold is compared as `Fraction`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal, NamedTuple

Status = Literal["used", "no_volume", "stale", "outlier", "gross"]
MIN_COMPARED = 3  # fewer candidates than this: nobody is judged against the others
STABLECOINS = ("usdt", "usdc")
_NEAR = 1e-9  # a float ratio this close to a threshold is decided with Fractions


class Observation(NamedTuple):
    """One market of a pair at tick t, with what its past says of it (a named tuple: 20,000
    are made each tick, three times faster than frozen dataclasses)."""

    exchange: str
    symbol: str
    price: float
    volume: float | None
    stale: bool = False  # unchanged for the stale limit (the caller tracks since when)
    was_outlier: bool = False  # outlier (or gross) at its previous point


class Constituent(NamedTuple):
    exchange: str
    symbol: str
    price: float
    volume: float | None
    weight: float  # share of the used volume; 0 when not used
    deviation: float | None  # p / ref − 1, when compared with the others
    status: Status


@dataclass(frozen=True, slots=True)
class PairFigures:
    pair: str
    base: str
    quote: str
    price: float | None  # None: no constituent is used this tick
    median: float | None
    volume: float  # base units, used + outlier constituents
    markets: int  # constituents used
    excluded: int  # constituents not used
    dispersion: float | None  # (max − min) / median of the used prices
    constituents: tuple[Constituent, ...]


@dataclass(frozen=True, slots=True)
class AssetFigures:
    asset: str
    price_usd: float | None
    price_via: str | None  # the pairs the USD price came through: "eth-usdt×usdt-usd"
    volume: float  # 24 h, in the asset's own units
    volume_usd: float | None
    markets: int  # markets used in its pairs' figures
    pairs: tuple[str, ...]


def grid(values: Sequence[float]) -> list[int]:
    """Non-negative floats as integers on one grid (each × the same power of two), so that
    their sums and comparisons are exact."""
    ratios = [v.as_integer_ratio() for v in values]
    scale = max((d for _, d in ratios), default=1)
    return [n * (scale // d) for n, d in ratios]


def weighted_median(prices: Sequence[float], units: Sequence[int]) -> float:
    """The lowest price at which the volumes of the prices at or below it reach half of the
    total volume (`units`: the volumes on one integer grid, all positive)."""
    order = sorted(range(len(prices)), key=prices.__getitem__)
    total, cum = sum(units), 0
    for i in order:
        cum += units[i]
        if 2 * cum >= total:
            return prices[i]
    raise ValueError("weighted_median of nothing")


@dataclass(frozen=True, slots=True)
class Factor:
    """A threshold on a price ratio, exact and as a float (for the fast path)."""

    exact: Fraction
    approx: float

    @classmethod
    def of(cls, exact: Fraction) -> Factor:
        return cls(exact, float(exact))


@lru_cache(maxsize=16)
def factors(outlier_percent: float) -> tuple[Factor, Factor, Factor]:
    """(gross, enter, leave): 10; 1 + percent/100; 1 + percent/200."""
    percent = Fraction(outlier_percent)
    return Factor.of(Fraction(10)), Factor.of(1 + percent / 100), Factor.of(1 + percent / 200)


def _beyond(price: float, ref: float, factor: Factor, strict: bool) -> bool:
    """price/ref > factor or < 1/factor (≥ and ≤ unless `strict`), decided exactly."""
    ratio, f = price / ref, factor.approx
    near = abs(ratio - f) <= _NEAR * f or abs(ratio * f - 1) <= _NEAR
    if not near:
        return ratio > f or ratio * f < 1
    p, r, factor_ = Fraction(price), Fraction(ref), factor.exact
    if strict:
        return p > r * factor_ or p * factor_ < r
    return p >= r * factor_ or p * factor_ <= r


def judge(
    candidates: Sequence[Observation], outlier_percent: float
) -> list[tuple[Status, float | None]]:
    """Each candidate's status and deviation against the volume-weighted median of the
    others: `gross`, `outlier` (with hysteresis), or `used`."""
    if len(candidates) < MIN_COMPARED:
        return [("used", None)] * len(candidates)
    gross, enter, leave = factors(outlier_percent)
    prices = [c.price for c in candidates]
    units = grid([c.volume or 0.0 for c in candidates])
    order = sorted(range(len(prices)), key=prices.__getitem__)
    total = sum(units)
    out: list[tuple[Status, float | None]] = []
    for i, c in enumerate(candidates):
        others, cum, ref = total - units[i], 0, prices[order[0]]
        for j in order:
            if j == i:
                continue
            cum += units[j]
            if 2 * cum >= others:
                ref = prices[j]
                break
        deviation = (c.price - ref) / ref  # exact difference when close (Sterbenz)
        if _beyond(c.price, ref, gross, strict=False):
            out.append(("gross", deviation))
        elif c.was_outlier:
            # Back among the others only once well inside the band (within half of it).
            out.append(
                ("outlier" if _beyond(c.price, ref, leave, strict=True) else "used", deviation)
            )
        elif _beyond(c.price, ref, enter, strict=True):
            out.append(("outlier", deviation))
        else:
            out.append(("used", deviation))
    return out


def pair_figures(
    pair: str,
    base: str,
    quote: str,
    observations: Sequence[Observation],
    outlier_percent: float,
) -> PairFigures:
    """A pair's figures at one tick from its markets' observations."""
    statuses: list[tuple[Status, float | None]] = []
    candidates: list[int] = []
    for i, o in enumerate(observations):
        if o.volume is None or o.volume <= 0:
            statuses.append(("no_volume", None))
        elif o.stale:
            statuses.append(("stale", None))
        else:
            statuses.append(("used", None))
            candidates.append(i)
    for i, judged in zip(
        candidates, judge([observations[i] for i in candidates], outlier_percent), strict=True
    ):
        statuses[i] = judged
    used = [i for i, (s, _) in enumerate(statuses) if s == "used"]
    used_volume = sum(observations[i].volume or 0.0 for i in used)
    price = median = dispersion = None
    if used:
        prices = [observations[i].price for i in used]
        volumes = [observations[i].volume or 0.0 for i in used]
        price = sum(p * v for p, v in zip(prices, volumes, strict=True)) / used_volume
        median = weighted_median(prices, grid(volumes))
        dispersion = (max(prices) - min(prices)) / median
    counted = sum(
        o.volume or 0.0
        for o, (s, _) in zip(observations, statuses, strict=True)
        if s in ("used", "outlier")
    )
    constituents = tuple(
        Constituent(
            o.exchange,
            o.symbol,
            o.price,
            o.volume,
            (o.volume or 0.0) / used_volume if s == "used" else 0.0,
            deviation,
            s,
        )
        for o, (s, deviation) in zip(observations, statuses, strict=True)
    )
    return PairFigures(
        pair,
        base,
        quote,
        price,
        median,
        counted,
        len(used),
        len(observations) - len(used),
        dispersion,
        constituents,
    )


def usd_prices(pairs: Mapping[str, PairFigures]) -> dict[str, tuple[float, str]]:
    """Each asset's USD price and the path it came through: its `-usd` pair; else its
    `-usdt`/`-usdc` pair times that stablecoin's USD price; else its `-btc` pair times
    `btc-usd`'s. `usd` itself is 1."""
    prices: dict[str, tuple[float, str]] = {"usd": (1.0, "usd")}

    def direct(asset: str, quote: str) -> float | None:
        figures = pairs.get(f"{asset}-{quote}")
        return figures.price if figures is not None else None

    assets = {f.base for f in pairs.values()} | {f.quote for f in pairs.values()}
    for asset in sorted(assets - {"usd"}):
        price = direct(asset, "usd")
        if price is not None:
            prices[asset] = (price, f"{asset}-usd")
    for asset in sorted(assets - prices.keys()):
        for coin in STABLECOINS:
            price, coin_usd = direct(asset, coin), prices.get(coin)
            if price is not None and coin_usd is not None and coin_usd[1] == f"{coin}-usd":
                prices[asset] = (price * coin_usd[0], f"{asset}-{coin}×{coin}-usd")
                break
    btc = prices.get("btc")
    for asset in sorted(assets - prices.keys()):
        price = direct(asset, "btc")
        if price is not None and btc is not None and btc[1] == "btc-usd":
            prices[asset] = (price * btc[0], f"{asset}-btc×btc-usd")
    return prices


def asset_figures(pairs: Mapping[str, PairFigures]) -> dict[str, AssetFigures]:
    """Every asset's figures from the pairs' figures of the same tick: volume in its own
    units (base volume where it is the base, quote volume — base volume × price — where it is
    the quote), in USD through its USD price."""
    usd = usd_prices(pairs)
    volume: dict[str, float] = {}
    markets: dict[str, int] = {}
    member: dict[str, list[str]] = {}
    for name in sorted(pairs):
        f = pairs[name]
        if f.price is None:
            continue
        for asset, amount in ((f.base, f.volume), (f.quote, f.volume * f.price)):
            volume[asset] = volume.get(asset, 0.0) + amount
            markets[asset] = markets.get(asset, 0) + f.markets
            member.setdefault(asset, []).append(name)
    out: dict[str, AssetFigures] = {}
    for asset in sorted(volume):
        price, via = usd.get(asset, (None, None))
        out[asset] = AssetFigures(
            asset,
            price,
            via,
            volume[asset],
            volume[asset] * price if price is not None else None,
            markets[asset],
            tuple(member[asset]),
        )
    return out
