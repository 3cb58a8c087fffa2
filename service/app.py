"""`create_app(settings)`: the FastAPI app, whose lifespan owns the DynamoDB client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from common.aws import dynamodb
from common.db import Store
from common.figures_store import FiguresStore
from common.senders import session
from common.settings import Settings
from service import errors
from service.accounts import Accounts
from service.cache import CachedAnswers, FiguresCache, ResponseCache, SnapshotCache
from service.deps import State
from service.guard import ReadOnlyGuard
from service.metrics import Metrics, MetricsMiddleware
from service.routes import (
    alerts,
    assets,
    dashboard,
    health,
    me,
    me_channels,
    me_rules,
    pairs,
    rank,
    symbols,
)

DESCRIPTION = """
Prices and 24h volumes of every market on Bitfinex (and Cryptowatch-format feeds), one point
per market per tick; rank by the standard deviation of the last window; price alerts.
Across markets: each pair over every exchange (`/pairs`, exchange `all`) and each asset over
its pairs (`/assets`, exchange `asset`), with outlier and stale markets set aside.

Times are ISO-8601 UTC (`2026-11-23T08:00:00Z`); parameters accept ISO-8601 or epoch seconds.
Answers change once per tick and carry `ETag` and `Cache-Control`.
"""


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with dynamodb(settings, timeout=settings.read_timeout) as client:
            store = Store(client, settings)
            accounts = Accounts.of(settings, store)
            app.state.tracker = State(
                settings,
                store,
                SnapshotCache(store, settings.fetch_interval),
                ResponseCache(),
                FiguresCache(FiguresStore(store), settings.fetch_interval),
                accounts=accounts,
            )
            async with session(accounts.allowed) as accounts.http:
                try:
                    yield
                finally:
                    await accounts.listed.close()
                    await accounts.keys.close()

    app = FastAPI(
        title="Crypto market tracker",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routes/dashboard.py from vendored files, not a CDN
        redoc_url=None,
    )
    app.state.metrics = Metrics()
    app.add_middleware(CachedAnswers)
    app.add_middleware(ReadOnlyGuard)
    if settings.cors_origins:  # off unless configured; preflights answered before the guard
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET"],
            allow_headers=["If-None-Match"],
            expose_headers=["ETag"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees hits too
    errors.install(app)
    for module in (
        symbols,
        rank,
        pairs,
        assets,
        alerts,
        me,
        me_channels,
        me_rules,
        health,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", dashboard.static_files(), name="static")
    return app
