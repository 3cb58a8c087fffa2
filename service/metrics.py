"""Prometheus figures: request latency per route, data freshness, the workers' heartbeats."""

from __future__ import annotations

import time

from fastapi import Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.db import Store
from common.errors import StoreError
from service.cache import SnapshotCache

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "tracker_http_request_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.freshness = Gauge(
            "tracker_data_age_seconds",
            "Seconds since the newest stored tick",
            registry=self.registry,
        )
        self.markets = Gauge("tracker_markets", "Markets on the board", registry=self.registry)
        self.worker = Gauge(
            "tracker_worker",
            "Heartbeat figures of the fetcher and the alerter",
            ["worker", "figure"],
            registry=self.registry,
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.latency.labels(route, scope.get("method", ""), str(status)).observe(seconds)

    async def render(self, store: Store, snapshots: SnapshotCache) -> Response:
        snapshot = await snapshots.get()
        if snapshot is not None:
            self.freshness.set(time.time() - snapshot.window_end)
            self.markets.set(len(snapshot.rows))
        for name in ("fetcher", "alerter"):
            try:
                beat = await store.get_heartbeat(name)
            except StoreError:
                beat = None
            for figure, value in (beat or {}).items():
                if isinstance(value, float):
                    self.worker.labels(name, figure).set(value)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Times every HTTP request by route template (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)
