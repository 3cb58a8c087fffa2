"""Assets across pairs: each asset's USD price (and its path) and its volume over every pair."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from common.crossmarket import AssetFigures
from common.errors import NotFound
from common.ticks import iso
from service.deps import FiguresDep, StateDep
from service.errors import Invalid
from service.routes.pairs import CODE_PATTERN, MAX_LIMIT, NOT_READY, pair_out, respond
from service.schemas import AssetDetail, AssetList, AssetOut

router = APIRouter(tags=["assets"])


def asset_out(a: AssetFigures, t: int) -> AssetOut:
    return AssetOut(
        asset=a.asset,
        price_usd=a.price_usd,
        price_via=a.price_via,
        volume=a.volume,
        volume_usd=a.volume_usd,
        markets=a.markets,
        time=iso(t),
    )


@router.get("/assets", response_model=AssetList, responses={503: {"description": NOT_READY}})
async def list_assets(
    request: Request,
    state: StateDep,
    doc: FiguresDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**6, description="Entries to skip")] = 0,
) -> Response:
    """Every asset's figures, largest USD volume first (assets with no USD price last)."""

    async def build() -> AssetList:
        ordered = sorted(doc.assets, key=lambda a: (-(a.volume_usd or -1.0), a.asset))
        return AssetList(
            assets=[asset_out(a, doc.t) for a in ordered[offset : offset + limit]],
            total=len(ordered),
            as_of=iso(doc.written_at),
        )

    return await respond(request, state, build)


@router.get(
    "/assets/{asset}",
    response_model=AssetDetail,
    responses={404: {"description": "Unknown asset"}, 503: {"description": NOT_READY}},
)
async def get_asset(
    request: Request,
    state: StateDep,
    doc: FiguresDep,
    asset: Annotated[
        str, Path(description="Asset code, e.g. btc", examples=["btc"], pattern=CODE_PATTERN)
    ],
) -> Response:
    """One asset's figures and the pairs they come from."""
    code = asset.strip().lower()
    if not re.match(CODE_PATTERN, code):
        raise Invalid("asset", f"malformed asset {code!r}: expected e.g. btc", "path")
    figures = doc.by_asset.get(code)
    if figures is None:
        raise NotFound(f"no asset {code!r} at the newest tick")

    async def build() -> AssetDetail:
        return AssetDetail(
            **asset_out(figures, doc.t).model_dump(),
            pairs=[pair_out(doc.by_pair[p], doc.t) for p in figures.pairs],
        )

    return await respond(request, state, build)
