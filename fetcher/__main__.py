"""`python -m fetcher` / `tracker fetch [--once]`: settings → clients → tick loop."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp

from common.aws import dynamodb
from common.db import Store
from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.settings import Settings
from common.ticks import tick_floor
from fetcher.sources import build_sources
from fetcher.worker import Fetcher


async def run(settings: Settings, once: bool = False) -> int:
    stop = stop_on_signals()
    headers = {"User-Agent": "crypto-tracker/0.1", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http, dynamodb(settings) as client:
        fetcher = Fetcher(settings, Store(client, settings), http, build_sources(settings))
        try:
            if once:
                ok = await fetcher.fetch_once(tick_floor(time.time(), settings.fetch_interval))
                await fetcher.heartbeat()
                return 0 if ok else 1
            await fetcher.main(stop)
            return 0
        finally:
            await fetcher.close()


def main(settings: Settings | None = None, once: bool = False) -> int:
    settings = settings or Settings()
    setup_logging(settings.log_level, "fetcher")
    return asyncio.run(run(settings, once))


if __name__ == "__main__":
    sys.exit(main(once="--once" in sys.argv[1:]))
