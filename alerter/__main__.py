"""`python -m alerter` / `tracker alert`: settings → clients → stream loop."""

from __future__ import annotations

import asyncio
import sys

from alerter.worker import Alerter
from common.aws import clients
from common.db import Store
from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.settings import Settings


async def run(settings: Settings) -> int:
    stop = stop_on_signals()
    async with clients(settings) as (client, streams):
        await Alerter(settings, Store(client, settings), streams).main(stop)
    return 0


def main(settings: Settings) -> int:
    setup_logging(settings.log_level, "alerter")
    return asyncio.run(run(settings))


if __name__ == "__main__":  # the same command as `tracker alert`
    from common.cli import main as cli

    sys.exit(cli(["alert", *sys.argv[1:]]))
