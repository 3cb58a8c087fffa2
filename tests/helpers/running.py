"""The project's parts run in-process for a test, each stopped afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from alerter.worker import Alerter
from common import aws
from common.db import Store
from common.settings import Settings
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real lifespan, and an httpx client on it (no alerter runs)."""
    from service.app import create_app

    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@asynccontextmanager
async def running_alerter(settings: Settings, **options: Any) -> AsyncIterator[Alerter]:
    """The alerter (stream reader, board, house rule) on `settings`' tables."""
    async with aws.clients(settings) as (client, streams):
        alerter = Alerter(settings, Store(client, settings), streams, **options)
        async with main_running(alerter):
            yield alerter


@asynccontextmanager
async def main_running(worker: Any) -> AsyncIterator[None]:
    """`worker.main(stop)` as a task, stopped and waited for afterwards."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.main(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def stack(settings: Settings) -> AsyncIterator[tuple[Store, Alerter, httpx.AsyncClient]]:
    """The alerter (board keeper) running + the app with its real lifespan."""
    async with (
        running_alerter(settings, publish_every=0.05) as alerter,
        app_client(settings) as http,
    ):
        yield alerter.store, alerter, http


async def published(alerter: Alerter, n: int) -> None:
    """Wait until the alerter has handled `n` records and published its board of them: none
    handled since its last publish began (`dirty`), and that publish written (the alerter
    clears `dirty` before it writes, so a board of older records may still be the one
    stored while a publish is under way)."""
    await wait_for(
        lambda: (
            alerter.processor.handled >= n
            and not alerter.processor.dirty
            and not alerter.publishing
            and alerter.published > 0
        ),
        30,
        f"{n} records handled and published",
    )


async def serving_latest(http: httpx.AsyncClient, alerter: Alerter, within: float = 30) -> None:
    """Wait until the app behind `http` serves the board the alerter published last (it looks
    at the boards' heads about once a second)."""
    state = http._transport.app.state.tracker  # type: ignore[attr-defined]

    async def latest() -> bool:
        snapshot = await state.snapshots.get()
        return snapshot is not None and snapshot.written_at >= alerter.published > 0

    await wait_for(latest, within, "the app serving the alerter's latest board")


@asynccontextmanager
async def demo_fetcher(dynamodb_url: str, url: str, **overrides: Any) -> AsyncIterator[Any]:
    """A fetcher of both sources on the demo exchange at `url`, its tables fresh."""
    import aiohttp

    from fetcher.sources import build_sources
    from fetcher.worker import Fetcher

    settings = make_settings(
        dynamodb_url,
        sources=["bitfinex", "cryptowatch"],
        bitfinex_url=url,
        cryptowatch_url=url,
        fetch_timeout=1.0,
        **overrides,
    )
    async with aiohttp.ClientSession() as http, tables(settings) as store:
        yield Fetcher(settings, store, http, build_sources(settings))


def running_demo(pairs: int = 300) -> Any:
    """The demo exchange in-process on a free port: (DemoExchange, base URL)."""
    from demo.exchange import running

    return running(pairs=pairs, seed=7, timeout_seconds=3.0)


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """A local HTTP endpoint recording every JSON POST: (bodies, apprise json:// URL)."""
    from demo.webhook import receiving

    received: list[dict[str, Any]] = []
    async with receiving(received.append) as url:
        yield received, url


@asynccontextmanager
async def running_deliverer(settings: Settings) -> AsyncIterator[Any]:
    """The delivery worker in-process on `settings`' tables, stopped afterwards."""
    from common.senders import unrestrict_apprise
    from notifier.worker import Deliverer

    async with aws.dynamodb(settings) as client:
        deliverer = Deliverer(settings, Store(client, settings))
        try:
            async with main_running(deliverer):
                yield deliverer
        finally:
            # The worker restricts apprise process-wide: give the rest of the session it all.
            unrestrict_apprise()
