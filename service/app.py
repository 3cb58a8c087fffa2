"""`create_app(settings)`: the FastAPI app, whose lifespan owns the DynamoDB client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common.aws import dynamodb
from common.db import Store
from common.settings import Settings
from service import errors
from service.cache import ResponseCache, SnapshotCache
from service.deps import State
from service.metrics import Metrics
from service.routes import alerts, health, rank, symbols

DESCRIPTION = """
Prices and 24h volumes of every market on Bitfinex (and Cryptowatch-format feeds), one point
per market per tick; rank by the standard deviation of the last window; price alerts.

Times are ISO-8601 UTC (`2026-11-23T08:00:00Z`); parameters accept ISO-8601 or epoch seconds.
Answers change once per tick and carry `ETag` and `Cache-Control`.
"""


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with dynamodb(settings) as client:
            store = Store(client, settings)
            app.state.tracker = State(
                settings, store, SnapshotCache(store, settings.fetch_interval), ResponseCache()
            )
            yield

    app = FastAPI(
        title="Crypto market tracker", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.metrics = Metrics()
    app.middleware("http")(app.state.metrics.middleware)
    errors.install(app)
    for module in (symbols, rank, alerts, health):
        app.include_router(module.router)
    return app
