"""Typed dependencies: the collaborators the lifespan owns, and validated path/query values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Query, Request

from common.db import Store
from common.errors import NotFound
from common.figures import FiguresDoc
from common.models import EXCHANGE_RE, SYMBOL_RE, Market
from common.settings import Settings
from common.snapshot import Snapshot
from service.cache import FiguresCache, ResponseCache, SnapshotCache
from service.errors import Invalid, NotReady
from service.ranking import Rankings

if TYPE_CHECKING:
    from service.accounts import Accounts
    from service.freshness import Reading


@dataclass
class State:
    settings: Settings
    store: Store
    snapshots: SnapshotCache
    responses: ResponseCache
    figures: FiguresCache
    rankings: Rankings = field(default_factory=Rankings)
    freshness: tuple[float, Reading] | None = None  # (monotonic time, reading): service.freshness
    accounts: Accounts | None = None  # the /me routes' collaborators


async def get_state(request: Request) -> State:
    state: State = request.app.state.tracker
    return state


StateDep = Annotated[State, Depends(get_state)]


async def get_snapshot(state: StateDep) -> Snapshot | None:
    return await state.snapshots.get()


SnapshotDep = Annotated[Snapshot | None, Depends(get_snapshot)]


async def ready_snapshot(state: StateDep, snapshot: SnapshotDep) -> Snapshot:
    """The board, or 503 + Retry-After while there is none yet (never an empty answer)."""
    if snapshot is None or not snapshot.rows:
        raise NotReady(
            "rank figures not ready yet: no alerter has published a board with data (is "
            "`tracker alert` running, and the fetcher writing points? the first board follows "
            "the first tick it reads)",
            retry_after=state.settings.fetch_interval,
        )
    return snapshot


ReadySnapshotDep = Annotated[Snapshot, Depends(ready_snapshot)]


# Documented in the schema (case-insensitive: input is lower-cased before the strict check).
EXCHANGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}(:[A-Za-z0-9][A-Za-z0-9._-]{0,47})?$"


def _exchange(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not EXCHANGE_RE.match(value):
        raise Invalid("exchange", f"malformed exchange {value!r}")
    return value


def _symbol(value: str) -> str:
    value = value.strip().lower()
    if not SYMBOL_RE.match(value):
        raise Invalid(
            "symbol", f"malformed symbol {value!r}: expected e.g. btcusd or testbtc:testusd", "path"
        )
    return value


async def exchange_filter(
    exchange: Annotated[
        str | None,
        Query(description="Only this exchange", examples=["bitfinex"], pattern=EXCHANGE_PATTERN),
    ] = None,
) -> str | None:
    return _exchange(exchange)


async def market(
    snapshot: SnapshotDep,
    state: StateDep,
    symbol: Annotated[
        str,
        Path(
            description="Pair, e.g. btcusd or testbtc:testusd",
            examples=["btcusd"],
            pattern=SYMBOL_PATTERN,
        ),
    ],
    exchange: Annotated[
        str,
        Query(
            description="Exchange of the market", examples=["bitfinex"], pattern=EXCHANGE_PATTERN
        ),
    ] = "bitfinex",
) -> Market:
    """The market named by the path, or 404 naming it when nothing was ever stored for it."""
    found = Market(_exchange(exchange) or "bitfinex", _symbol(symbol))
    known = snapshot is not None and found in snapshot.by_market()
    if not known and await state.store.latest_point(found) is None:
        raise NotFound(f"no market {found.symbol!r} on exchange {found.exchange!r}")
    return found


ExchangeDep = Annotated[str | None, Depends(exchange_filter)]
MarketDep = Annotated[Market, Depends(market)]


async def ready_figures(state: StateDep) -> FiguresDoc:
    """The cross-market figures, or 503 + Retry-After while the fetcher has published none."""
    doc = await state.figures.get()
    if doc is None:
        raise NotReady(
            "cross-market figures not ready yet: the fetcher publishes them after each tick "
            "(is `tracker fetch` running?)",
            retry_after=state.settings.fetch_interval,
        )
    return doc


FiguresDep = Annotated[FiguresDoc, Depends(ready_figures)]
