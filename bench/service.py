"""Service: rank and history latency against their floors; req/s against a bare endpoint."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from alerter.worker import Alerter
from bench.raw import batch_write
from bench.report import Row, ms, pct, verdict
from common import aws
from common.db import Store
from common.items import point_item
from common.models import Market, Point
from common.schema import init_db
from common.settings import Settings
from common.stats import summarize
from common.ticks import tick_floor
from service.ranking import rank_rows
from tracker import dynamodb_local

MARKETS, POINTS, SEQUENTIAL = 1000, 1440, 300


async def seed(settings: Settings, store: Store) -> list[Market]:
    """1,000 markets × 1,440 one-minute points."""
    markets = [Market("bitfinex", f"b{i:04d}usd") for i in range(MARKETS)]
    if await store.get_heartbeat("bench-seed"):
        return markets
    end = tick_floor(time.time(), 60)
    rng = random.Random(3)
    started = time.monotonic()
    for n, market in enumerate(markets, start=1):
        level = math.exp(rng.uniform(-5, 12))
        items = [
            point_item(
                Point(
                    market,
                    end - (POINTS - 1 - i) * 60,
                    level * (1 + rng.gauss(0, 0.01)),
                    rng.uniform(1, 1e5),
                ),
                settings.retention,
            )
            for i in range(POINTS)
        ]
        await batch_write(store.client, settings.table("points"), items, 32)
        if n % 100 == 0:
            print(
                f"  seeding: {n * POINTS:,}/{MARKETS * POINTS:,} points "
                f"({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    await store.put_heartbeat("bench-seed", {"at": time.time()})
    return markets


async def timed(n: int, call: Any) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - started)
    return out


def wrk(url: str, seconds: int = 10, script: Path | None = None) -> tuple[float, int, str]:
    """(requests/s, errors, output) from wrk with 2 threads and 32 connections."""
    extra = ["--latency", "-s", str(script)] if script else []
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", *extra, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    count = int(errors.group(1)) if errors else 0
    if socket_errors:
        count += sum(int(g) for g in socket_errors.groups())
    return rate, count, out


def latency(out: str, q: str) -> str:
    found = re.search(rf"^\s+{q}%\s+(\S+)", out, re.MULTILINE)
    return found.group(1) if found else "?"


def service_env(settings: Settings, port: int) -> dict[str, str]:
    """`tracker serve`'s environment for a benchmark on `settings`' tables."""
    return {
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_PORT": str(port),
        "TRACKER_LOG_LEVEL": "WARNING",
    }


def spawn(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    dynamodb_local.wait_for_port(port, 30)
    return process


async def service(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    async with aws.clients(settings) as (client, streams):
        await init_db(client, settings)
        store = Store(client, settings)
        markets = await seed(settings, store)
        alerter = Alerter(settings, store, streams)
        started = time.perf_counter()
        await alerter.processor.preload(markets, 0)  # 0: the whole table (seeds are reused)
        alerter.processor.dirty = True
        await alerter.publish()
        rows.append(
            Row(
                "alerter: rebuild 1,000×1,440 windows from the table + publish",
                f"{time.perf_counter() - started:.1f} s",
            )
        )

        port, bare_port = dynamodb_local.free_port(), dynamodb_local.free_port()
        env = service_env(settings, port)
        api = spawn([sys.executable, "-m", "service"], env, port)
        bare = spawn([sys.executable, "-m", "bench.bare", str(bare_port)], {}, bare_port)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:

                async def get(path: str) -> Any:
                    async with http.get(base + path) as r:
                        assert r.status == 200, (path, r.status, await r.text())
                        return await r.read()

                await get("/rank?limit=1000")
                rank = await timed(SEQUENTIAL, lambda i: get("/rank?limit=100"))
                get_item = await timed(
                    SEQUENTIAL,
                    lambda i: client.get_item(
                        TableName=settings.table("meta"),
                        Key={"k": {"S": "heartbeat#bench-seed"}, "n": {"N": "0"}},
                    ),
                )
                uncached = await timed(50, lambda i: _rank_from_snapshot(store))
                end = float((await store.get_snapshot()).window_end)  # type: ignore[union-attr]
                started = time.perf_counter()
                await _naive_rank(store, markets, end, settings.rank_window)
                naive = time.perf_counter() - started
                market = markets[7]
                path = f"/symbols/{market.symbol}/history?end={end}&start="
                # A slightly different start each time (same points): every answer uncached.
                history = await timed(
                    SEQUENTIAL // 3, lambda i: get(f"{path}{end - 86400 + i * 1e-3:.3f}")
                )
                bare_query = await timed(
                    SEQUENTIAL // 3, lambda i: _bare_query(client, settings, market, end)
                )
                bare_projected = await timed(
                    SEQUENTIAL // 3, lambda i: _bare_query(client, settings, market, end, "t, p")
                )
            p50 = pct(rank, 0.5)
            rows += [
                Row("service: GET /rank p50 (cached, HTTP)", ms(p50)),
                Row("service: GetItem round trip p50", ms(pct(get_item, 0.5))),
                Row(
                    "service: GET /rank / GetItem",
                    f"{p50 / pct(get_item, 0.5):.2f}×",
                    "≤ 2×",
                    verdict(p50 / pct(get_item, 0.5) <= 2),
                ),
                Row(
                    "service: rank from the snapshot, uncached (read+rank) p50",
                    ms(pct(uncached, 0.5)),
                ),
                Row("service: naive rank recompute from raw history", f"{naive:.1f} s"),
                Row(
                    "service: naive recompute / GET /rank",
                    f"{naive / p50:,.0f}×",
                    "≥ 300×",
                    verdict(naive / p50 >= 300),
                ),
                Row(
                    "service: naive recompute / uncached rank",
                    f"{naive / pct(uncached, 0.5):,.0f}×",
                ),
                Row("service: GET 24h history p50 (uncached, HTTP)", ms(pct(history, 0.5))),
                Row("service: bare Query of the same 1,440 items p50", ms(pct(bare_query, 0.5))),
                Row(
                    "service: history / bare Query (whole items)",
                    f"{pct(history, 0.5) / pct(bare_query, 0.5):.2f}×",
                    "≤ 1.25×",
                    verdict(pct(history, 0.5) / pct(bare_query, 0.5) <= 1.25),
                ),
                Row(
                    "service: bare Query, same projection (t, p) p50", ms(pct(bare_projected, 0.5))
                ),
                Row(
                    "service: history / bare Query (same projection)",
                    f"{pct(history, 0.5) / pct(bare_projected, 0.5):.2f}×",
                ),
            ]
            if shutil.which("wrk"):
                bare_rate, _, _ = wrk(f"http://127.0.0.1:{bare_port}/bare")
                for path in ("/rank", "/symbols"):
                    rate, errors, _ = wrk(base + path)
                    rows.append(
                        Row(
                            f"load: GET {path} req/s (wrk, 32 conns, {errors} errors)",
                            f"{rate:,.0f}",
                        )
                    )
                    rows.append(
                        Row(
                            f"load: GET {path} / bare FastAPI ({bare_rate:,.0f} req/s)",
                            f"{rate / bare_rate:.2f}",
                            "≥ 0.7, 0 errors",
                            verdict(rate / bare_rate >= 0.7 and errors == 0),
                        )
                    )
                seconds = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
                rate, errors, out = wrk(base, seconds, Path(__file__).with_name("mixed.lua"))
                rows += [
                    Row(
                        f"load: mixed GETs for {seconds} s (symbols, history, rank, alerts)",
                        f"{rate:,.0f} req/s",
                        "≥ 1,000 req/s, 0 errors",
                        verdict(rate >= 1000 and errors == 0),
                    ),
                    Row(
                        "load: mixed latency p50 / p99",
                        f"{latency(out, '50')} / {latency(out, '99')}",
                    ),
                    Row("load: mixed errors (non-2xx/3xx + socket)", str(errors)),
                ]
            else:
                rows.append(Row("load: wrk not installed (make bench installs it as root)", "-"))
        finally:
            api.terminate()
            bare.terminate()
            api.wait(10)
            bare.wait(10)
    return rows


async def _rank_from_snapshot(store: Store) -> None:
    snapshot = await store.get_snapshot()
    assert snapshot is not None
    rank_rows(snapshot.rows, "price", False)


async def _naive_rank(store: Store, markets: list[Market], end: float, window: int) -> None:
    """What rank would cost without precomputed figures: every market's 24h read and reduced."""
    semaphore = asyncio.Semaphore(16)

    async def one(market: Market) -> float | None:
        async with semaphore:
            points = await store.query_points(market, end - window, end)
        return summarize([p.price for p in points]).stdev

    stdevs = await asyncio.gather(*(one(m) for m in markets))
    sorted(s for s in stdevs if s is not None)


async def _bare_query(
    client: Any, settings: Settings, market: Market, end: float, projection: str | None = None
) -> None:
    request: dict[str, Any] = {
        "TableName": settings.table("points"),
        "KeyConditionExpression": "m = :m AND t BETWEEN :a AND :b",
        "ExpressionAttributeValues": {
            ":m": {"S": market.key},
            ":a": {"N": str(int(end) - 86399)},
            ":b": {"N": str(int(end))},
        },
    }
    if projection:
        request["ProjectionExpression"] = projection
    while True:
        response = await client.query(**request)
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
