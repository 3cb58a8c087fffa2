"""Pairs across markets: each pair's figures over every exchange that trades it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from common.crossmarket import PairFigures
from common.errors import NotFound
from common.figures import FiguresDoc
from common.ticks import iso
from service.deps import FiguresDep, State, StateDep
from service.errors import Invalid
from service.schemas import ConstituentOut, PairDetail, PairList, PairOut

router = APIRouter(tags=["pairs"])
NOT_READY = "No cross-market figures yet (the fetcher publishes them each tick)"
PAIR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.]{0,31}-[A-Za-z0-9][A-Za-z0-9.]{0,31}$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.]{0,31}$"
MAX_LIMIT = 1000


def pair_out(p: PairFigures, t: int) -> PairOut:
    return PairOut(
        pair=p.pair,
        base=p.base,
        quote=p.quote,
        price=p.price,
        median=p.median,
        volume=p.volume,
        markets=p.markets,
        excluded=p.excluded,
        dispersion=p.dispersion,
        time=iso(t),
    )


async def respond(
    request: Request, state: State, build: Callable[[], Awaitable[BaseModel]]
) -> Response:
    """The cached answer tied to the figures document (not the board): built once per
    document, and the cache's lookup brings the document up to date first."""
    return await state.responses.respond(
        request, state.snapshots, None, build, lambda _: state.figures.version, state.figures.get
    )


def usd_volume(doc: FiguresDoc, p: PairFigures) -> float:
    """A pair's 24 h volume in USD, for ordering (0 when its base has no USD price)."""
    asset = doc.by_asset.get(p.base)
    price = asset.price_usd if asset is not None else None
    return p.volume * price if price is not None else 0.0


@router.get("/pairs", response_model=PairList, responses={503: {"description": NOT_READY}})
async def list_pairs(
    request: Request,
    state: StateDep,
    doc: FiguresDep,
    quote: Annotated[
        str | None, Query(description="Only pairs of this quote asset", pattern=CODE_PATTERN)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**6, description="Entries to skip")] = 0,
) -> Response:
    """Every pair's figures across markets, largest USD volume first."""
    wanted = quote.lower() if quote else None

    async def build() -> PairList:
        chosen = [p for p in doc.pairs if wanted in (None, p.quote)]
        chosen.sort(key=lambda p: (-usd_volume(doc, p), p.pair))
        return PairList(
            pairs=[pair_out(p, doc.t) for p in chosen[offset : offset + limit]],
            total=len(chosen),
            as_of=iso(doc.written_at),
        )

    return await respond(request, state, build)


def pair_name(value: str) -> str:
    value = value.strip().lower()
    if not re.match(PAIR_PATTERN, value):
        raise Invalid(
            "pair", f"malformed pair {value!r}: expected base-quote, e.g. btc-usd", "path"
        )
    return value


@router.get(
    "/pairs/{pair}",
    response_model=PairDetail,
    responses={404: {"description": "Unknown pair"}, 503: {"description": NOT_READY}},
)
async def get_pair(
    request: Request,
    state: StateDep,
    doc: FiguresDep,
    pair: Annotated[
        str,
        Path(description="base-quote, e.g. btc-usd", examples=["btc-usd"], pattern=PAIR_PATTERN),
    ],
) -> Response:
    """One pair's figures and every constituent market with its status and deviation."""
    name = pair_name(pair)
    figures = doc.by_pair.get(name)
    if figures is None:
        raise NotFound(f"no pair {name!r} at the newest tick")

    async def build() -> PairDetail:
        return PairDetail(
            **pair_out(figures, doc.t).model_dump(),
            constituents=[ConstituentOut(**c._asdict()) for c in figures.constituents],
            stale_after=doc.stale_after,
            outlier_percent=doc.outlier_percent,
        )

    return await respond(request, state, build)
