"""Prometheus figures: request latency per route, data freshness, the workers' heartbeats."""

from __future__ import annotations

import time

from fastapi import Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.freshness import Reading

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
        self.data_age = Gauge(
            "tracker_data_age_seconds",
            "Seconds since the newest tick written for each fetcher source",
            ["source"],
            registry=self.registry,
        )
        self.board_age = Gauge(
            "tracker_board_age_seconds",
            "Seconds since an alerter last published the figures (the board) this replica holds",
            registry=self.registry,
        )
        self.tick_age = Gauge(
            "tracker_board_tick_age_seconds",
            "Seconds since the newest tick in the figures this replica holds",
            registry=self.registry,
        )
        self.markets = Gauge("tracker_markets", "Markets on the board", registry=self.registry)
        self.beat_age = Gauge(
            "tracker_worker_heartbeat_age_seconds",
            "Seconds since each worker's last heartbeat",
            ["worker"],
            registry=self.registry,
        )
        self.fetch_failures = Gauge(
            "tracker_fetch_failures",
            "Ticks each source could not fetch since the fetcher started, by reason "
            "(rate_limit, maintenance, unavailable, rejected, unknown_shape, empty, timeout, …)",
            ["source", "reason"],
            registry=self.registry,
        )
        self.store = Gauge(
            "tracker_service_store",
            "This service's DynamoDB figures: store_up (1/0), store_outages, store_failures, "
            "store_outage_seconds",
            ["figure"],
            registry=self.registry,
        )
        self.worker = Gauge(
            "tracker_worker",
            "Heartbeat figures of the fetcher and the alerter",
            ["worker", "figure"],
            registry=self.registry,
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.latency.labels(route, scope.get("method", ""), str(status)).observe(seconds)

    def render(self, now: Reading, store: dict[str, float]) -> Response:
        for figure, value in store.items():
            self.store.labels(figure).set(value)
        if now.snapshot is not None:
            self.board_age.set(now.at - now.snapshot.written_at)
            self.tick_age.set(now.at - now.snapshot.window_end)
            self.markets.set(len(now.snapshot.rows))
        for source, newest in now.sources().items():
            if newest is not None:
                self.data_age.labels(source).set(now.at - newest)
        for name, beat in (("fetcher", now.fetcher), ("alerter", now.alerter)):
            if beat is None:
                continue
            self.beat_age.labels(name).set(now.at - float(beat.get("at", 0)))
            for figure, field in beat.items():
                if isinstance(field, float):
                    self.worker.labels(name, figure).set(field)
                    source, failed, reason = figure.partition(".failed.")
                    if name == "fetcher" and failed:
                        self.fetch_failures.labels(source, reason).set(field)
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
