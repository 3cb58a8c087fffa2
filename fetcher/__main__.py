"""`python -m fetcher [--once]` / `tracker fetch [--once]`: settings → clients → tick loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import aiohttp

from common.aws import dynamodb
from common.db import Store
from common.errors import StoreMisconfigured
from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.models import SYMBOL_RE
from common.settings import Settings, load_or_exit
from common.ticks import tick_floor
from fetcher.backfill import EXCHANGE, Backfill, markets_of, parse_since
from fetcher.sources import build_sources, close_sources
from fetcher.worker import Fetcher

log = logging.getLogger("fetcher")


async def run(settings: Settings, once: bool = False) -> int:
    stop = stop_on_signals()
    headers = {"User-Agent": "crypto-tracker/0.1", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http, dynamodb(settings) as client:
        sources = build_sources(settings)
        fetcher = Fetcher(settings, Store(client, settings), http, sources)
        try:
            if once:
                ok = await fetcher.fetch_once(tick_floor(time.time(), settings.fetch_interval))
                await fetcher.heartbeat()
                return 0 if ok else 1
            await fetcher.main(stop)
            return 0
        except StoreMisconfigured as exc:
            log.error(
                "cannot work as configured (tables %s-*), stopping: %s", settings.table_prefix, exc
            )
            return 1
        finally:
            await fetcher.close()
            await close_sources(sources)


def command(args: argparse.Namespace) -> int:
    settings = load_or_exit("fetcher")
    setup_logging(settings.log_level, "fetcher")
    return asyncio.run(run(settings, args.once))


async def backfill(settings: Settings, args: argparse.Namespace) -> int:
    if args.exchange != EXCHANGE:
        print(f"backfill: no candles for {args.exchange!r}; only {EXCHANGE!r}", file=sys.stderr)
        return 2
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"backfill: --since: {exc}", file=sys.stderr)
        return 2
    markets = markets_of(args.symbols.split(","))
    bad = [m.symbol for m in markets if not SYMBOL_RE.match(m.symbol)]
    if bad or not markets:
        print(f"backfill: --symbols: not symbols: {bad or args.symbols!r}", file=sys.stderr)
        return 2
    if since > settings.retention:
        print(
            f"backfill: --since {args.since} reaches past TRACKER_RETENTION "
            f"({settings.retention} s): those points would expire at once",
            file=sys.stderr,
        )
        return 2
    now = time.time()
    async with aiohttp.ClientSession() as http, dynamodb(settings) as client:
        job = Backfill(settings, Store(client, settings), http, args.rate, not args.overwrite)
        summary = await job.run(markets, now - since, now)
    print(
        f"backfill: {summary.markets} market(s), {summary.missing} tick(s) "
        f"{'rewritten' if args.overwrite else 'missing'}, {summary.written} point(s) written"
        + (f"; failed: {', '.join(summary.failed)}" if summary.failed else "")
    )
    return 1 if summary.failed else 0


def backfill_command(args: argparse.Namespace) -> int:
    settings = load_or_exit("backfill")
    setup_logging(settings.log_level, "backfill")
    return asyncio.run(backfill(settings, args))


if __name__ == "__main__":  # the same command as `tracker fetch`
    parser = argparse.ArgumentParser(prog="python -m fetcher", description="the fetcher")
    parser.add_argument("--once", action="store_true", help="fetch the current tick and exit")
    sys.exit(command(parser.parse_args()))
