"""Alerts the stream consumer recorded, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from common.models import SYMBOL_RE
from common.ticks import iso
from service.deps import ExchangeDep, StateDep
from service.errors import Invalid
from service.routes.symbols import time_param
from service.schemas import AlertList, AlertOut

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertList)
async def list_alerts(
    state: StateDep,
    exchange: ExchangeDep,
    symbol: Annotated[str | None, Query(description="Only this pair", examples=["btcusd"])] = None,
    since: Annotated[str | None, Query(description="Only alerts at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    """Price alerts (price ≥ multiplier × its alert-window average), newest first."""
    if symbol is not None:
        symbol = symbol.strip().lower()
        if not SYMBOL_RE.match(symbol):
            raise Invalid("symbol", f"malformed symbol {symbol!r}", where="query")
    alerts = await state.store.list_alerts(exchange, symbol, time_param("since", since), limit)
    return AlertList(
        alerts=[
            AlertOut(
                id=a.id,
                exchange=a.market.exchange,
                symbol=a.market.symbol,
                time=iso(a.t),
                price=a.price,
                average=a.average,
                ratio=a.ratio,
                points=a.points,
            )
            for a in alerts
        ]
    )
