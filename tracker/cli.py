"""`tracker`: one console script for every process and chore (CONTRACT's command list).

The services' own entry points (`python -m fetcher|service|alerter`) each stand alone; this
dispatcher lends them its sub-commands and adds the chores that belong to no one service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common.log import setup_logging
from common.settings import Settings, load_or_exit
from demo import DEMO_PORT

Command = Callable[[argparse.Namespace], int]


def _dynamodb_local(args: argparse.Namespace) -> int:
    from tracker import dynamodb_local

    setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "dynamodb-local")
    cmd = dynamodb_local.command(args.port, None if args.in_memory else args.data.resolve())
    if not args.in_memory:
        args.data.mkdir(parents=True, exist_ok=True)
    os.execvp(cmd[0], cmd)  # noqa: S606 (java and its arguments, built by dynamodb_local)


def _demo_exchange(args: argparse.Namespace) -> int:
    from demo.exchange import serve

    setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "demo-exchange")
    serve(args.host, args.port, args.pairs, args.seed, args.cryptowatch_markets)
    return 0


def _up(args: argparse.Namespace) -> int:
    from tracker.supervisor import up

    return up(demo=args.demo_port if args.demo else None, dynamodb_port=args.port)


def _init_db(_: argparse.Namespace) -> int:
    settings = load_or_exit("init-db")
    setup_logging(settings.log_level, "init-db")
    return asyncio.run(init_db(settings))


def _fetch(args: argparse.Namespace) -> int:
    from fetcher.__main__ import command

    return command(args)


def _backfill(args: argparse.Namespace) -> int:
    from fetcher.__main__ import backfill_command

    return backfill_command(args)


def _serve(args: argparse.Namespace) -> int:
    from service.__main__ import command

    return command(args)


def _alert(args: argparse.Namespace) -> int:
    from alerter.__main__ import command

    return command(args)


def _deliver(args: argparse.Namespace) -> int:
    from notifier.__main__ import command

    return command(args)


def _healthcheck(args: argparse.Namespace) -> int:
    from tracker.healthcheck import check

    return check(args.role, load_or_exit("healthcheck"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Crypto market tracker")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(run=run)
        return p

    ddb = command("dynamodb-local", _dynamodb_local, "run DynamoDB Local in the foreground")
    ddb.add_argument("--port", type=int, default=8000)
    where = ddb.add_mutually_exclusive_group()
    where.add_argument(
        "--data", type=Path, default=Path("var/dynamodb"), help="kept data (default var/dynamodb)"
    )
    where.add_argument("--in-memory", action="store_true", help="keep nothing")

    command("init-db", _init_db, "create missing tables, enable TTL and Streams (idempotent)")
    fetch = command("fetch", _fetch, "run the fetcher")
    fetch.add_argument("--once", action="store_true", help="fetch the current tick and exit")
    backfill = command(
        "backfill", _backfill, "refill missing ticks of Bitfinex markets from 1-minute candles"
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
    serve = command("serve", _serve, "run the HTTP API")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes answering on the one port (default 1)"
    )
    command("alert", _alert, "run the alerter (stream consumer)")
    command("deliver", _deliver, "run the delivery worker (users' and house alerts' outbox)")
    from tracker.accounts import add_commands

    add_commands(sub)
    up = command("up", _up, "embedded run: DynamoDB Local, tables, fetcher, service, alerter")
    up.add_argument("--demo", action="store_true", help="also run the demo exchange and use it")
    up.add_argument("--port", type=int, default=8000, help="DynamoDB Local port")
    up.add_argument("--demo-port", type=int, default=DEMO_PORT, help="demo exchange port")
    demo = command("demo-exchange", _demo_exchange, "the offline fake exchange")
    demo.add_argument("--port", type=int, default=DEMO_PORT)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--pairs", type=int, default=300, help="Bitfinex pairs (300)")
    demo.add_argument(
        "--cryptowatch-markets",
        type=int,
        default=None,
        help="Cryptowatch markets (default: 150 real ones; more are numbered tokens)",
    )
    demo.add_argument("--seed", type=int, default=1)
    health = command(
        "healthcheck", _healthcheck, "exit 0 if this container's process is alive (Docker)"
    )
    health.add_argument("role", choices=["service", "fetcher", "alerter", "notifier"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Command = args.run
    return run(args)


async def init_db(settings: Settings) -> int:
    """Create what is missing, waiting for DynamoDB to answer (a container starts with it)."""
    from common.aws import dynamodb
    from common.errors import StoreUnavailable
    from common.retry import Backoff, Retry, retry
    from common.schema import init_db

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
