"""Ranking markets by their window stdev, from the board snapshot (no raw history read)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.models import Market, Metric
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
