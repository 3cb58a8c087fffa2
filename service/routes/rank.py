"""Rank by the standard deviation of the last TRACKER_RANK_WINDOW, from precomputed figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from common.assets import AGGREGATES
from common.errors import NotFound
from common.models import Metric
from common.snapshot import Snapshot
from common.ticks import iso
from service.deps import ExchangeDep, MarketDep, ReadySnapshotDep, StateDep
from service.errors import Invalid
from service.ranking import MARKETS, Ranked, listed, rank_rows
from service.routes.symbols import check_exchange
from service.schemas import RankEntry, Ranking, SymbolRank

router = APIRouter(tags=["rank"])
NOT_READY = "No rank figures yet (no alerter has published a board); Retry-After says when"
MAX_LIMIT = 1000
MetricQuery = Annotated[Metric, Query(description="price or volume")]
NormalizeQuery = Annotated[
    bool, Query(description="Rank by stdev / mean (compares JPY and USD pairs fairly)")
]


def window(snapshot: Snapshot, rank_window: int) -> tuple[str, str]:
    return iso(snapshot.window_end - rank_window), iso(snapshot.window_end)


@router.get(
    "/symbols/{symbol}/rank",
    response_model=SymbolRank,
    responses={404: {"description": "Unknown market"}, 503: {"description": NOT_READY}},
)
async def symbol_rank(
    request: Request,
    market: MarketDep,
    state: StateDep,
    snapshot: ReadySnapshotDep,
    metric: MetricQuery = "price",
    normalize: NormalizeQuery = False,
) -> Response:
    """One market's rank among all markets by the stdev of its window (rank 1 = largest)."""

    async def build() -> SymbolRank:
        mine, total = state.rankings.find(snapshot, market, metric, normalize)
        row = snapshot.by_market().get(market)
        summary = mine.summary if mine else (row.stats[metric] if row else None)
        start, end = window(snapshot, state.settings.rank_window)
        return SymbolRank(
            exchange=market.exchange,
            symbol=market.symbol,
            metric=metric,
            rank=mine.rank if mine else None,
            total=total,
            stdev=summary.stdev if summary else None,
            mean=summary.mean if summary else None,
            count=summary.count if summary else 0,
            window_start=start,
            window_end=end,
            as_of=iso(snapshot.written_at),
        )

    return await state.responses.respond(request, state.snapshots, snapshot, build)


def entry(r: Ranked) -> RankEntry:
    assert r.summary.stdev is not None and r.summary.mean is not None
    return RankEntry(
        exchange=r.market.exchange,
        symbol=r.market.symbol,
        rank=r.rank,
        stdev=r.summary.stdev,
        mean=r.summary.mean,
        count=r.summary.count,
    )


@router.get(
    "/rank",
    response_model=Ranking,
    responses={404: {"description": "Unknown symbol"}, 503: {"description": NOT_READY}},
)
async def rank_all(
    request: Request,
    state: StateDep,
    snapshot: ReadySnapshotDep,
    exchange: ExchangeDep,
    metric: MetricQuery = "price",
    symbols: Annotated[
        str | None, Query(description="Comma list: rank only these", examples=["btcusd,ethusd"])
    ] = None,
    normalize: NormalizeQuery = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**6, description="Entries to skip")] = 0,
) -> Response:
    """Every market (or a chosen subset) ranked by stdev over the window, largest first."""
    check_exchange(snapshot, exchange)
    wanted: set[str] | None = None
    if symbols is not None:
        wanted = {s.strip().lower() for s in symbols.split(",") if s.strip()}
        if not wanted:
            raise Invalid("symbols", "symbols: give at least one symbol, comma separated")
        if len(wanted) > MAX_LIMIT:
            raise Invalid("symbols", f"symbols: at most {MAX_LIMIT} at once")

    async def build() -> Ranking:
        rows = [
            r
            for r in snapshot.rows
            if listed(r.market, exchange) and (wanted is None or r.market.symbol in wanted)
        ]
        if wanted is not None:
            missing = wanted - {r.market.symbol for r in rows}
            if missing:
                raise NotFound(f"unknown symbol(s): {', '.join(sorted(missing))}")
        # A whole group (the exchanges' markets, or `all`, or `asset`) is ranked once a board.
        group = exchange if exchange in AGGREGATES else MARKETS if exchange is None else None
        ranked = (
            state.rankings.of(snapshot, metric, normalize, group)
            if group is not None and wanted is None
            else rank_rows(rows, metric, normalize)
        )
        start, end = window(snapshot, state.settings.rank_window)
        return Ranking(
            metric=metric,
            total=len(ranked),
            window_start=start,
            window_end=end,
            ranking=[entry(r) for r in ranked[offset : offset + limit]],
            as_of=iso(snapshot.written_at),
        )

    return await state.responses.respond(request, state.snapshots, snapshot, build)
