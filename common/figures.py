"""A tick's cross-market figures as one document: every pair with its constituents, every
asset, and the fetcher's checks — what `/pairs` and `/assets` answer from.

The fetcher writes it to the meta table each tick (common/figures_store.py), compressed in
parts of at most `PART_PAIRS` pairs so that 20,000 constituents stay under DynamoDB's 400 KB
item limit. The pairs' and assets' figures are also written as points (exchanges `all` and
`asset`); this document adds what a point cannot hold: constituents, statuses, the path of a
USD price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from common.crossmarket import AssetFigures, Constituent, PairFigures
from common.parts import pack, unpack

PART_PAIRS = 1000  # rows (pairs, then assets) a part, fewer where they compress badly


@dataclass(frozen=True)
class Mismatch:
    """A market fetched directly and through a Cryptowatch feed whose prices differ."""

    market: str  # exchange:symbol
    direct: float
    feed: float

    @property
    def difference(self) -> float:
        return self.feed / self.direct - 1


@dataclass(frozen=True)
class FiguresDoc:
    t: int
    written_at: float
    stale_after: int
    outlier_percent: float
    pairs: tuple[PairFigures, ...]
    assets: tuple[AssetFigures, ...]
    unsplit: int = 0  # markets of this tick whose base and quote are unknown
    unsplit_sample: str = ""
    mismatches: tuple[Mismatch, ...] = field(default=())  # the largest differences first
    compared: int = 0  # markets the cross-source check compared
    differ: int = 0  # of those, how many differ (`mismatches` names at most the first 20)

    @property
    def version(self) -> str:
        return f"{self.t}-{self.written_at:.6f}"

    @cached_property
    def by_pair(self) -> dict[str, PairFigures]:
        return {p.pair: p for p in self.pairs}

    @cached_property
    def by_asset(self) -> dict[str, AssetFigures]:
        return {a.asset: a for a in self.assets}


def _pair_row(p: PairFigures) -> list[Any]:
    members = [list(c) for c in p.constituents]  # a named tuple: its fields in order
    return [
        p.pair,
        p.base,
        p.quote,
        p.price,
        p.median,
        p.volume,
        p.markets,
        p.excluded,
        p.dispersion,
        members,
    ]


def _pair(raw: list[Any]) -> PairFigures:
    *figures, members = raw
    # The row is the dataclass's fields in order, then the constituents.
    return PairFigures(*figures, tuple(Constituent(*m) for m in members))  # type: ignore[call-arg]


def _asset_row(a: AssetFigures) -> list[Any]:
    return [a.asset, a.price_usd, a.price_via, a.volume, a.volume_usd, a.markets, list(a.pairs)]


def _asset(raw: list[Any]) -> AssetFigures:
    asset, price, via, volume, volume_usd, markets, pairs = raw
    return AssetFigures(asset, price, via, volume, volume_usd, markets, tuple(pairs))


def encode(doc: FiguresDoc) -> list[bytes]:
    """Compressed JSON parts (common/parts.py): the pairs' rows, then the assets'; part 0
    carries the header (small: 4,000 assets in it would pass the item limit on their own)."""
    header = {
        "t": doc.t,
        "stale_after": doc.stale_after,
        "outlier_percent": doc.outlier_percent,
        "pairs": len(doc.pairs),
        "unsplit": doc.unsplit,
        "unsplit_sample": doc.unsplit_sample,
        "mismatches": [[m.market, m.direct, m.feed] for m in doc.mismatches],
        "compared": doc.compared,
        "differ": doc.differ,
    }
    rows = [_pair_row(p) for p in doc.pairs] + [_asset_row(a) for a in doc.assets]
    return pack(doc.written_at, header, rows, PART_PAIRS)


def decode(parts: Sequence[bytes]) -> FiguresDoc | None:
    """The document, or None when parts are missing or from different writes."""
    unpacked = unpack(parts)
    if unpacked is None:
        return None
    header, rows = unpacked
    return FiguresDoc(
        t=header["t"],
        written_at=header["w"],
        stale_after=header["stale_after"],
        outlier_percent=header["outlier_percent"],
        pairs=tuple(_pair(raw) for raw in rows[: header["pairs"]]),
        assets=tuple(_asset(raw) for raw in rows[header["pairs"] :]),
        unsplit=header["unsplit"],
        unsplit_sample=header["unsplit_sample"],
        mismatches=tuple(Mismatch(*m) for m in header["mismatches"]),
        compared=header["compared"],
        differ=header["differ"],
    )
