"""Fetcher: a 1,000-market tick against a bare BatchWriteItem, and tick-start jitter."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.raw import batch_write
from bench.report import Row, median, ms, pct, verdict
from common import aws
from common.db import WRITE_CONCURRENCY, Store
from common.items import point_item
from common.models import Market, Point
from common.schema import init_db
from common.settings import Settings
from common.ticks import tick_floor
from demo.exchange import running
from fetcher.schedule import ticks
from fetcher.sources import build_sources
from fetcher.worker import Fetcher

RUNS = 7


async def tick_vs_bare(settings: Settings) -> list[Row]:
    async with (
        running(pairs=1000) as (_, url),
        aiohttp.ClientSession() as http,
        aws.dynamodb(settings) as client,
    ):
        settings = settings.model_copy(update={"bitfinex_url": url, "sources": ["bitfinex"]})
        await init_db(client, settings)
        fetcher = Fetcher(settings, Store(client, settings), http, build_sources(settings))
        t0 = tick_floor(time.time(), 60)
        await fetcher.fetch_once(t0)  # warm-up: connections, JIT
        tick_times, bare_times = [], []
        for run in range(RUNS):
            started = time.perf_counter()
            assert await fetcher.fetch_once(t0 + 60 * (run + 1))
            tick_times.append(time.perf_counter() - started)
            items = [
                point_item(
                    Point(Market("bench", f"m{i}"), t0 + run, 1.0 + i, 2.0), settings.retention
                )
                for i in range(1000)
            ]
            started = time.perf_counter()
            await batch_write(client, settings.table("points"), items, WRITE_CONCURRENCY)
            bare_times.append(time.perf_counter() - started)
    tick, bare = median(tick_times), median(bare_times)
    return [
        Row(
            "fetcher: tick, 1,000 markets (fetch+parse+write, median)",
            ms(tick),
            "≤ 2 s",
            verdict(tick <= 2),
        ),
        Row("fetcher: bare BatchWriteItem of the same 1,000 items", ms(bare)),
        Row(
            "fetcher: tick / bare write",
            f"{tick / bare:.2f}×",
            "≤ 1.5×",
            verdict(tick / bare <= 1.5),
        ),
    ]


async def jitter() -> list[Row]:
    stop = asyncio.Event()
    lateness: list[float] = []
    async for tick in ticks(1, stop):
        lateness.append(time.time() - tick.t)
        if len(lateness) == 31:
            break
    lateness = lateness[1:]  # the first tick starts whenever the loop does
    worst = max(lateness)
    return [
        Row("schedule: tick-start lateness p50 (30 ticks @ 1 s)", ms(pct(lateness, 0.5))),
        Row("schedule: tick-start lateness max", ms(worst), "≤ 50 ms", verdict(worst <= 0.05)),
    ]
