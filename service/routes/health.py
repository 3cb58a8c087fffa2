"""Liveness, readiness (each dependency checked and named) and metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from common.errors import StoreError
from service.deps import StateDep
from service.metrics import Metrics
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(state: StateDep) -> Response:
    """Readiness: DynamoDB answers and the newest tick is at most two intervals old."""
    checks: dict[str, str] = {}
    try:
        await state.store.ping()
        checks["dynamodb"] = "ok"
        snapshot = await state.snapshots.get()
    except StoreError as exc:
        checks["dynamodb"] = f"unreachable: {exc}"
        snapshot = None
    if checks["dynamodb"] == "ok":
        interval = state.settings.fetch_interval
        if snapshot is None or snapshot.window_end == 0:
            checks["data"] = (
                "no data yet: is the fetcher running and can it reach the "
                "exchanges? is the alerter (stream consumer) running?"
            )
        else:
            age = time.time() - snapshot.window_end
            checks["data"] = (
                f"ok ({age:.0f} s old)"
                if age <= 2 * interval
                else f"stale: newest tick is {age:.0f} s old (limit {2 * interval} s)"
            )
    ok = all(v.startswith("ok") for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus text format."""
    registry: Metrics = request.app.state.metrics
    return await registry.render(state.store, state.snapshots)
