"""Prometheus figures: request latency per route, data freshness, the workers' heartbeats."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.latency.labels(path, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

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
