"""Markets: the latest point of each, one market, and its history."""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from common.models import Market, Metric
from common.snapshot import Snapshot
from common.ticks import iso, parse_time
from common.window import BoardRow
from service.cache import per_tick
from service.deps import ExchangeDep, MarketDep, ReadySnapshotDep, SnapshotDep, StateDep
from service.errors import Invalid
from service.ranking import listed
from service.schemas import History, Latest, SymbolList

router = APIRouter(tags=["symbols"])


def latest(row: BoardRow) -> Latest:
    return Latest(
        exchange=row.market.exchange,
        symbol=row.market.symbol,
        price=row.price,
        volume=row.volume,
        time=iso(row.t),
    )


@router.get(
    "/symbols",
    response_model=SymbolList,
    responses={503: {"description": "No board yet (no alerter has published one)"}},
)
async def list_symbols(
    request: Request, state: StateDep, snapshot: ReadySnapshotDep, exchange: ExchangeDep
) -> Response:
    """The latest price and volume of every market (optionally of one exchange; `all` for the
    pairs across markets, `asset` for the assets)."""
    check_exchange(snapshot, exchange)

    async def build() -> SymbolList:
        return SymbolList(
            symbols=[latest(r) for r in snapshot.rows if listed(r.market, exchange)],
            as_of=iso(snapshot.written_at),
        )

    return await state.responses.respond(request, state.snapshots, snapshot, build)


@router.get(
    "/symbols/{symbol}", response_model=Latest, responses={404: {"description": "Unknown market"}}
)
async def get_symbol(
    market: MarketDep, state: StateDep, snapshot: SnapshotDep, response: Response
) -> Latest:
    """The latest price and volume of one market (from the table when no board has it)."""
    row = snapshot.by_market().get(market) if snapshot else None
    if row is not None:
        response.headers.update(state.snapshots.headers())
        return latest(row)
    point = await state.store.latest_point(market)
    assert point is not None  # the market dependency found one
    return Latest(
        exchange=market.exchange,
        symbol=market.symbol,
        price=point.price,
        volume=point.volume,
        time=iso(point.t),
    )


def time_param(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise Invalid(
            name,
            f"{name}: expected ISO-8601 (2026-11-23T08:00:00Z) or epoch seconds, got {value!r}",
        ) from None


@router.get(
    "/symbols/{symbol}/history",
    response_model=History,
    responses={404: {"description": "Unknown market"}, 422: {"description": "Bad range"}},
)
async def history(
    request: Request,
    market: MarketDep,
    state: StateDep,
    snapshot: SnapshotDep,
    metric: Annotated[Metric, Query(description="price or volume")] = "price",
    start: Annotated[str | None, Query(description="Exclusive; ISO-8601 or epoch seconds")] = None,
    end: Annotated[str | None, Query(description="Inclusive; default: the newest tick")] = None,
) -> Response:
    """A market's points with start < time <= end, oldest first (default: the rank window)."""
    settings = state.settings
    hi = time_param("end", end)
    if hi is None:
        hi = float(snapshot.window_end if snapshot else time.time())
    lo = time_param("start", start)
    if lo is None:
        lo = hi - settings.rank_window
    if lo >= hi:
        raise Invalid("start", f"start ({iso(lo)}) must be before end ({iso(hi)})")
    if hi - lo > settings.retention:
        raise Invalid(
            "start",
            f"range of {hi - lo:.0f} s is longer than the retention ({settings.retention} s)",
        )

    async def build() -> bytes:
        series = await state.store.query_series(market, lo, hi, metric)
        # The `History` model, rendered directly: 1,440 values straight from the store need
        # no validation, and building a model per point would cost more than the Query.
        answer = {
            "exchange": market.exchange,
            "symbol": market.symbol,
            "metric": metric,
            "start": iso(lo),
            "end": iso(hi),
            "points": [{"time": iso(t), "value": v} for t, v in series],
        }
        return json.dumps(answer, separators=(",", ":")).encode()

    return await state.responses.respond(
        request, state.snapshots, snapshot, build, per_tick(market)
    )


def check_exchange(snapshot: Snapshot, exchange: str | None) -> None:
    known = snapshot.exchanges
    if exchange is not None and exchange not in known:
        raise Invalid(
            "exchange", f"unknown exchange {exchange!r}; known: {', '.join(sorted(known))}"
        )


__all__ = ["Market", "check_exchange", "router"]
