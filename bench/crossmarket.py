"""Cross-market figures at breadth: 20,000 markets over 5,000 pairs (1,250 bases × usd, usdt,
eur, btc on four exchanges each).

- CPU: the fetcher's figures step (`Aggregator.tick`) per tick, against 0.3 s.
- Writes: one tick's points with and without its figures' points, on DynamoDB Local, against
  ≤ 1.10 (measured alternately, three times each, medians).
- Reads: `GET /pairs/btc-usd` and `GET /assets` against `GET /rank` through the real service
  process, p50 of sequential requests, against ≤ 1.5.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time

import aiohttp

from bench.report import Row, ms, pct, verdict
from bench.service import service_env, spawn, timed
from common import aws
from common.assets import Split
from common.db import Store
from common.figures_store import FiguresStore
from common.models import Market, Point, Quote
from common.schema import init_db
from common.settings import Settings
from common.snapshot import Snapshot
from common.stats import Summary
from common.ticks import tick_floor
from common.window import BoardRow
from fetcher.aggregate import Aggregator, points_of
from tracker import dynamodb_local

BASES, QUOTES = 1250, ("usd", "usdt", "eur", "btc")
EXCHANGES = ("kraken", "binance", "bitstamp", "coinbase-pro")
TICKS = 5


def universe(rng: random.Random) -> list[tuple[Market, Split, float]]:
    """(market, split, level): 20,000 markets, four per pair."""
    levels = {"btc": 40_000.0, "usdt": 1.0, "eur": 1.08, "usd": 1.0}
    bases = ["btc"] + [f"tok{i:04d}" for i in range(BASES - 1)]
    for base in bases[1:]:
        levels[base] = math.exp(rng.uniform(-8, 8))
    out = []
    for base in bases:
        for quote in QUOTES:
            if base == quote:
                quote = "gbp"
                levels.setdefault("gbp", 1.27)
            for exchange in EXCHANGES:
                out.append(
                    (
                        Market(exchange, f"{base}{quote}"),
                        Split(base, quote),
                        levels[base] / levels[quote],
                    )
                )
    return out


def quotes_at(
    rng: random.Random, markets: list[tuple[Market, Split, float]], k: int
) -> list[Quote]:
    """Tick k's quotes: prices within ±0.3 % of the level, one market in 50 frozen."""
    out = []
    for i, (market, split, level) in enumerate(markets):
        frozen = i % 50 == 0
        price = level if frozen else level * (1 + rng.gauss(0, 0.003))
        volume = 1_000.0 if frozen else rng.uniform(10, 100_000) * (1 + 0.01 * k)
        out.append(Quote(market, price, volume, split))
    return out


async def crossmarket(settings: Settings) -> list[Row]:
    rng = random.Random(5)
    markets = universe(rng)
    aggregator = Aggregator(settings.stale_after, settings.outlier_percent)
    t0 = tick_floor(time.time(), 60)
    cpu, docs, ticks = [], [], []
    for k in range(TICKS):
        quotes = quotes_at(rng, markets, k)
        started = time.process_time()
        doc = aggregator.tick(t0 - (TICKS - 1 - k) * 60, quotes, [])
        cpu.append(time.process_time() - started)
        docs.append(doc)
        ticks.append(quotes)
    doc = docs[-1]
    cpu_median = statistics.median(cpu)
    rows = [
        Row(
            f"figures: {len(markets):,} markets, {len(doc.pairs):,} pairs, {len(doc.assets):,} "
            "assets: CPU per tick (median of 5)",
            f"{cpu_median:.3f} s",
            "≤ 0.3 s",
            verdict(cpu_median <= 0.3),
        )
    ]

    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        alone, both = [], []
        figures = points_of(doc)
        for k in range(3):  # alternately, so a drift of the machine hits both alike
            t = t0 + 60 * (10 + 2 * k)
            tick = [Point(q.market, t, q.price, q.volume) for q in ticks[-1]]
            started = time.perf_counter()
            await store.put_points(tick)
            alone.append(time.perf_counter() - started)
            tick = [Point(q.market, t + 60, q.price, q.volume) for q in ticks[-1]]
            extra = [Point(p.market, t + 60, p.price, p.volume) for p in figures]
            started = time.perf_counter()
            await store.put_points(tick)
            await store.put_points(extra)
            both.append(time.perf_counter() - started)
        ratio = statistics.median(both) / statistics.median(alone)
        rows.append(
            Row(
                f"figures: tick write with its {len(figures):,} figure points / without "
                f"({statistics.median(alone):.1f} s, DynamoDB Local)",
                f"{ratio:.2f}×",
                "≤ 1.10",
                verdict(ratio <= 1.10),
            )
        )

        # The board (as an alerter publishes it) and the figures (as the fetcher does).
        summary = {"price": Summary(1440, 1.0, 0.01), "volume": Summary(1440, 1e4, 1e3)}
        board = [
            BoardRow(q.market, doc.t, q.price, q.volume, summary)  # type: ignore[arg-type]
            for q in ticks[-1]
        ] + [
            BoardRow(p.market, doc.t, p.price, p.volume, summary)  # type: ignore[arg-type]
            for p in figures
        ]
        snapshot = Snapshot(
            doc.t,
            settings.rank_window,
            time.time(),
            tuple(sorted(board, key=lambda r: r.market)),
            "bench",
        )
        await store.put_snapshot(snapshot, 0)
        await FiguresStore(store).put(doc)

    port = dynamodb_local.free_port()
    api = spawn([sys.executable, "-m", "service"], service_env(settings, port), port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> None:
                async with http.get(base + path) as response:
                    assert response.status == 200, (path, response.status, await response.text())
                    await response.read()

            p50: dict[str, float] = {}
            for path in (
                "/rank?limit=100",
                "/pairs/btc-usd",
                "/assets?limit=100",
                "/pairs?limit=100",
            ):
                await get(path)  # built once, then served from the cache as every client is
                p50[path] = pct(await timed(300, lambda i, path=path: get(path)), 0.5)
    finally:
        api.terminate()
        api.wait(10)
    rank = p50["/rank?limit=100"]
    for path in ("/pairs/btc-usd", "/assets?limit=100", "/pairs?limit=100"):
        ratio = p50[path] / rank
        rows.append(
            Row(
                f"service: GET {path} p50 {ms(p50[path])} / GET /rank {ms(rank)}",
                f"{ratio:.2f}×",
                "≤ 1.5",
                verdict(ratio <= 1.5),
            )
        )
    return rows
