"""Alerter: price write → webhook received, over 200+ alerts, with a real `tracker alert`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

from bench.report import Row, ms, pct, verdict
from common import aws
from common.db import Store
from common.models import Market, Point
from common.schema import init_db
from common.settings import Settings
from common.ticks import tick_floor
from demo.webhook import receiving

ALERTS = 220


async def latency(settings: Settings) -> list[Row]:
    received: dict[str, float] = {}

    def on_post(body: dict[str, Any]) -> None:
        received[body["title"].split(":")[0].split()[1].lower()] = time.perf_counter()

    async with receiving(on_post) as hook:
        return await _measure(settings, hook, received)


async def _measure(settings: Settings, hook: str, received: dict[str, float]) -> list[Row]:
    markets = [Market("bitfinex", f"a{i:04d}usd") for i in range(ALERTS)]
    env = {
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_FETCH_INTERVAL": "1",
        "TRACKER_ALERT_WINDOW": "20",
        "TRACKER_RANK_WINDOW": "120",
        "TRACKER_NOTIFY_URLS": hook,
        "TRACKER_LOG_LEVEL": "WARNING",
        "TRACKER_WORKER_ID": "bench-alerter",
    }
    written: dict[str, float] = {}
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        now = tick_floor(time.time(), 1)
        await store.put_points(
            [Point(m, now - 20 + i, 100.0, 1.0) for m in markets for i in range(20)]
        )
        alerter = subprocess.Popen(
            [sys.executable, "-m", "alerter"],
            env=os.environ | env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until the history has been read
                beat = await store.get_heartbeat("alerter")
                if beat and float(beat.get("records", 0)) >= len(markets) * 20:
                    break
                await asyncio.sleep(0.5)
            for market in markets:
                started = time.perf_counter()
                await store.put_points([Point(market, now, 400.0, 1.0)])
                written[market.symbol] = started
                await asyncio.sleep(0.03)
            deadline = time.monotonic() + 60
            while len(received) < len(markets) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            alerter.terminate()
            alerter.wait(20)
    delays: list[float] = [received[s] - t for s, t in written.items() if s in received]
    p99 = pct(delays, 0.99) if delays else float("inf")
    return [
        Row(
            f"alerter: write → webhook p50 ({len(delays)}/{len(markets)} alerts)",
            ms(pct(delays, 0.5)) if delays else "-",
        ),
        Row(
            "alerter: write → webhook p99",
            ms(p99),
            "≤ 1 s",
            verdict(p99 <= 1.0 and len(delays) == len(markets)),
        ),
    ]
