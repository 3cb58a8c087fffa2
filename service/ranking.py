"""Ranking markets by their window stdev, from the board snapshot (no raw history read)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.assets import AGGREGATES
from common.models import Market, Metric
from common.snapshot import Snapshot
from common.stats import Summary, competition_rank, rank_score
from common.window import BoardRow


@dataclass(frozen=True, slots=True)
class Ranked:
    market: Market
    rank: int
    summary: Summary


def rank_rows(rows: Iterable[BoardRow], metric: Metric, normalize: bool) -> list[Ranked]:
    """Markets with at least two points, largest stdev (or stdev/mean) first, ties sharing."""
    scored: list[tuple[BoardRow, float]] = []
    for row in rows:
        score = rank_score(row.stats[metric], normalize)
        if score is not None:
            scored.append((row, score))
    return [
        Ranked(row.market, rank, row.stats[metric])
        for row, _, rank in competition_rank((row, score) for row, score in scored)
    ]


MARKETS = "markets"  # the exchanges' own markets, apart from the aggregates


def group_of(market: Market) -> str:
    """What a market is ranked among: the exchanges' markets, the pairs (`all`) or the
    assets (`asset`): the contract's "relative to other metrics of the same type"."""
    return market.exchange if market.exchange in AGGREGATES else MARKETS


def listed(market: Market, exchange: str | None) -> bool:
    """Shown for an `exchange` filter: that exchange's markets (`all`: the pairs, `asset`: the
    assets), or without one the exchanges' own markets."""
    return market.exchange == exchange if exchange else group_of(market) == MARKETS


class Rankings:
    """Every market of a group ranked, once per snapshot, group, metric and normalisation:
    the answers of all `/symbols/{symbol}/rank` requests of a tick share one sort."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.ranked: dict[tuple[str, Metric, bool], tuple[list[Ranked], dict[Market, Ranked]]] = {}

    def of(
        self, snapshot: Snapshot | None, metric: Metric, normalize: bool, group: str = MARKETS
    ) -> list[Ranked]:
        return self._get(snapshot, metric, normalize, group)[0]

    def find(
        self, snapshot: Snapshot | None, market: Market, metric: Metric, normalize: bool
    ) -> tuple[Ranked | None, int]:
        """The market's entry (None when it is not ranked) and how many of its group are."""
        ranked, by_market = self._get(snapshot, metric, normalize, group_of(market))
        return by_market.get(market), len(ranked)

    def _get(
        self, snapshot: Snapshot | None, metric: Metric, normalize: bool, group: str
    ) -> tuple[list[Ranked], dict[Market, Ranked]]:
        version = snapshot.version if snapshot else None
        if version != self.version:
            self.version, self.ranked = version, {}
        key = (group, metric, normalize)
        if key not in self.ranked:
            rows = snapshot.rows if snapshot else ()
            ranked = rank_rows((r for r in rows if group_of(r.market) == group), metric, normalize)
            self.ranked[key] = ranked, {r.market: r for r in ranked}
        return self.ranked[key]
