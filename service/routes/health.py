"""Liveness, readiness, each component's freshness, and metrics.

/readyz fails (503) only when this replica cannot serve at all: no board held and DynamoDB
unreachable. How old the data is goes into its body, /status and /metrics instead.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.deps import StateDep
from service.errors import STORE_RETRY_AFTER
from service.freshness import reading
from service.metrics import Metrics
from service.schemas import Alive, Health, Status

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Alive)
async def healthz() -> Alive:
    """Liveness: the process answers, and says which it is (with `--workers`, one of several)."""
    return Alive(status="ok", process=os.getpid())


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(state: StateDep) -> Response:
    """Readiness: this replica can serve (it holds a board or DynamoDB answers); staleness is
    reported in the body (status `degraded`), never by failing."""
    now = await reading(state)
    dynamodb, board = now.dynamodb(), now.board()
    checks = {
        "dynamodb": "ok" if dynamodb.ok else dynamodb.detail,
        "data": f"ok ({board.detail})" if board.ok else board.detail,
    }
    for name, source in now.fetchers().items():  # failed fetches show here, by their reason
        key = name if name == "fetcher" else f"fetcher {name}"  # no heartbeat: no source known
        checks[key] = f"ok ({source.detail})" if source.ok else source.detail
    if not now.ready:
        body = Health(status="unavailable", checks=checks)
        headers = {"Retry-After": str(STORE_RETRY_AFTER)}
        return JSONResponse(body.model_dump(), status_code=503, headers=headers)
    status = "ok" if dynamodb.ok and board.ok else "degraded"
    return JSONResponse(Health(status=status, checks=checks).model_dump())


@router.get("/status", response_model=Status)
async def status(state: StateDep) -> Status:
    """Each component's freshness — DynamoDB, the figures, every fetcher source, the alerter —
    and the problems in words (the dashboard shows them as a banner)."""
    return (await reading(state)).status()


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus text format."""
    registry: Metrics = request.app.state.metrics
    return registry.render(await reading(state), state.store.outage.figures())
