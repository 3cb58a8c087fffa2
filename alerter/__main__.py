"""`python -m alerter` / `tracker alert`: settings → clients → stream loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from alerter.worker import Alerter
from common.aws import clients
from common.db import Store
from common.errors import StoreMisconfigured
from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.settings import Settings, load_or_exit

log = logging.getLogger("alerter")


async def run(settings: Settings) -> int:
    stop = stop_on_signals()
    async with clients(settings) as (client, streams):
        try:
            await Alerter(settings, Store(client, settings), streams).main(stop)
        except StoreMisconfigured as exc:
            log.error(
                "cannot work as configured (tables %s-*), stopping: %s", settings.table_prefix, exc
            )
            return 1
    return 0


def command(_: argparse.Namespace) -> int:
    settings = load_or_exit("alerter")
    setup_logging(settings.log_level, "alerter")
    return asyncio.run(run(settings))


if __name__ == "__main__":  # the same command as `tracker alert`
    sys.exit(command(argparse.ArgumentParser(prog="python -m alerter").parse_args()))
