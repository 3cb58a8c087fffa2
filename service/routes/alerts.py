"""Alerts the stream consumer recorded, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from common.models import SYMBOL_RE, Alert
from common.ticks import iso
from service.deps import ExchangeDep, SnapshotDep, StateDep
from service.errors import Invalid
from service.routes.symbols import time_param
from service.schemas import AlertList, AlertOut

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertList)
async def list_alerts(
    request: Request,
    state: StateDep,
    snapshot: SnapshotDep,
    exchange: ExchangeDep,
    symbol: Annotated[str | None, Query(description="Only this pair", examples=["btcusd"])] = None,
    since: Annotated[str | None, Query(description="Only alerts at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Price alerts (price ≥ multiplier × its alert-window average), newest first."""
    if symbol is not None:
        symbol = symbol.strip().lower()
        if not SYMBOL_RE.match(symbol):
            raise Invalid("symbol", f"malformed symbol {symbol!r}", where="query")
    start = time_param("since", since)

    # Every alert recorded marks the board changed (alerter/processor.py), so a new board
    # version is also the moment new alerts appear: cached per version like the rest.
    async def build() -> AlertList:
        found = await state.store.list_alerts(exchange, symbol, start, limit)
        return AlertList(alerts=[out(a) for a in found])

    return await state.responses.respond(request, state.snapshots, snapshot, build)


def out(a: Alert) -> AlertOut:
    return AlertOut(
        id=a.id,
        exchange=a.market.exchange,
        symbol=a.market.symbol,
        time=iso(a.t),
        price=a.price,
        average=a.average,
        ratio=a.ratio,
        points=a.points,
    )
