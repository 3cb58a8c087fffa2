"""`python -m notifier` / `tracker deliver`: settings → client → the delivery loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from common.aws import dynamodb
from common.db import Store
from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.settings import ConfigError, Settings, load_or_exit
from notifier.worker import Deliverer

log = logging.getLogger("notifier")


async def run(settings: Settings) -> int:
    stop = stop_on_signals()
    async with dynamodb(settings) as client:
        try:
            deliverer = Deliverer(settings, Store(client, settings))
        except (ValueError, ConfigError) as exc:
            log.error("cannot deliver as configured: %s", exc)
            return 2
        await deliverer.main(stop)
    return 0


def command(_: argparse.Namespace) -> int:
    settings = load_or_exit("notifier")
    setup_logging(settings.log_level, "notifier")
    return asyncio.run(run(settings))


if __name__ == "__main__":  # the same command as `tracker deliver`
    sys.exit(command(argparse.ArgumentParser(prog="python -m notifier").parse_args()))
