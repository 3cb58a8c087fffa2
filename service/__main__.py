"""`python -m service` / `tracker serve`: settings → app → uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator

import uvicorn

from common.lifecycle import stop_on_signals
from common.log import setup_logging
from common.settings import Settings, load_or_exit
from service.app import create_app


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown (exit -15); we own the signals
    instead, so a stop is a clean exit 0 like the other services'."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        limit_concurrency=2048,
    )
    server = _Server(config)
    stop = stop_on_signals()
    task = asyncio.create_task(server.serve())
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    server.should_exit = True
    await task


def command(_: argparse.Namespace) -> int:
    settings = load_or_exit("service")
    setup_logging(settings.log_level, "service")
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":  # the same command as `tracker serve`
    sys.exit(command(argparse.ArgumentParser(prog="python -m service").parse_args()))
