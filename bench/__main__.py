"""`make bench`: every benchmark on in-memory DynamoDB Local, printed as one table.

In memory because DynamoDB Local on disk writes ~400 items/s against ~2,000 in memory: the
service benchmark's 1.44 M points are seeded in about twelve minutes each run."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench import alerts, crossmarket, fetcher, rules, service
from bench.report import Row, table
from common.settings import Settings
from tracker import dynamodb_local


async def stage(name: str, body: Callable[[str], Awaitable[list[Row]]]) -> list[Row]:
    """Each stage on its own fresh in-memory DynamoDB Local, so none slows another."""
    print(f"{name} …", flush=True)
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        return await body(f"http://127.0.0.1:{port}")
    finally:
        ddb.terminate()
        ddb.wait(30)


def settings(url: str, prefix: str, **extra: Any) -> Settings:
    return Settings(aws_endpoint_url=url, log_level="WARNING", table_prefix=prefix, **extra)


async def run() -> list[Row]:
    async def fetch(url: str) -> list[Row]:
        return await fetcher.tick_vs_bare(settings(url, "bench-fetch")) + await fetcher.jitter()

    async def alert(url: str) -> list[Row]:
        extra = {"fetch_interval": 1, "alert_window": 20, "rank_window": 120}
        return await alerts.latency(settings(url, "bench-alerts", **extra))

    async def serve(url: str) -> list[Row]:
        return await service.service(settings(url, "bench"))

    async def across(url: str) -> list[Row]:
        return await crossmarket.crossmarket(settings(url, "bench-across"))

    async def users(url: str) -> list[Row]:
        return await rules.rules_bench(settings(url, "bench-rules"))

    rows = await stage("fetcher", fetch)
    rows += await stage("users' rules (100,000 over 20,000 markets) and deliveries", users)
    rows += await stage("cross-market figures (20,000 markets)", across)
    rows += await stage("alerter", alert)
    rows += await stage("service (seeding 1.44 M points first, ~12 min)", serve)
    return rows


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    rows = asyncio.run(run())
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
