"""`tracker`: one console script for every process and chore (CONTRACT's command list)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from common.log import setup_logging
from common.settings import ConfigError, Settings, load_settings
from common.supervisor import DEMO_PORT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Crypto market tracker")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ddb = sub.add_parser("dynamodb-local", help="run DynamoDB Local in the foreground")
    ddb.add_argument("--port", type=int, default=8000)
    where = ddb.add_mutually_exclusive_group()
    where.add_argument(
        "--data", type=Path, default=Path("var/dynamodb"), help="kept data (default var/dynamodb)"
    )
    where.add_argument("--in-memory", action="store_true", help="keep nothing")

    sub.add_parser("init-db", help="create missing tables, enable TTL and Streams (idempotent)")
    fetch = sub.add_parser("fetch", help="run the fetcher")
    fetch.add_argument("--once", action="store_true", help="fetch the current tick and exit")
    backfill = sub.add_parser(
        "backfill", help="refill missing ticks of Bitfinex markets from 1-minute candles"
    )
    backfill.add_argument("--exchange", default="bitfinex", help="only bitfinex has candles")
    backfill.add_argument(
        "--symbols", required=True, help="comma list of symbols, e.g. btcusd,ethusd"
    )
    backfill.add_argument("--since", default="24h", help="how far back: 24h, 90m, 2d (24h)")
    backfill.add_argument(
        "--overwrite", action="store_true", help="rewrite every tick, not only the missing ones"
    )
    backfill.add_argument(
        "--rate", type=float, default=30.0, help="candle requests per minute (Bitfinex: 30)"
    )
    sub.add_parser("serve", help="run the HTTP API")
    sub.add_parser("alert", help="run the alerter (stream consumer)")
    up = sub.add_parser(
        "up", help="embedded run: DynamoDB Local, tables, fetcher, service, alerter"
    )
    up.add_argument("--demo", action="store_true", help="also run the demo exchange and use it")
    up.add_argument("--port", type=int, default=8000, help="DynamoDB Local port")
    up.add_argument("--demo-port", type=int, default=DEMO_PORT, help="demo exchange port")
    demo = sub.add_parser("demo-exchange", help="the offline fake exchange")
    demo.add_argument("--port", type=int, default=DEMO_PORT)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--pairs", type=int, default=300)
    demo.add_argument("--seed", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"tracker {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "dynamodb-local":
        from common import dynamodb_local

        setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "dynamodb-local")
        cmd = dynamodb_local.command(args.port, None if args.in_memory else args.data.resolve())
        if not args.in_memory:
            args.data.mkdir(parents=True, exist_ok=True)
        os.execvp(cmd[0], cmd)
    if command == "demo-exchange":
        from demo.exchange import serve

        setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "demo-exchange")
        serve(args.host, args.port, args.pairs, args.seed)
        return 0
    if command == "up":
        from common.supervisor import up

        return up(demo=args.demo_port if args.demo else None, dynamodb_port=args.port)
    settings = load_settings()
    if command == "init-db":
        return asyncio.run(_init_db(settings))
    if command == "fetch":
        from fetcher.__main__ import main as fetch_main

        return fetch_main(settings, once=args.once)
    if command == "backfill":
        from fetcher.__main__ import backfill_main

        return backfill_main(settings, args)
    if command == "serve":
        from service.__main__ import main as serve_main

        return serve_main(settings)
    if command == "alert":
        from alerter.__main__ import main as alert_main

        return alert_main(settings)
    raise AssertionError(command)


async def _init_db(settings: Settings) -> int:
    from common.aws import dynamodb
    from common.errors import StoreUnavailable
    from common.retry import Backoff, Retry, retry
    from common.schema import init_db

    setup_logging(settings.log_level, "init-db")

    async def attempt() -> list[str]:
        try:
            async with dynamodb(settings) as client:
                return await init_db(client, settings)
        except (OSError, StoreUnavailable, Exception) as exc:
            if "Could not connect" in str(exc) or isinstance(exc, OSError | StoreUnavailable):
                raise Retry(
                    f"DynamoDB not reachable at {settings.aws_endpoint_url or 'AWS'}"
                ) from exc
            raise

    await retry(attempt, "init-db", backoff=Backoff(base=0.5, cap=5), attempts=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
