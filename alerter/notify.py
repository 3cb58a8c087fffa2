"""Notifications through apprise, off the stream's path, retried, secrets kept out of logs.

Each alert record is written with an `outbox` mark; this sender delivers it to every URL,
then clears the mark. After a crash, alerts still marked are sent again at start-up: delivery
is at least once, and exactly once unless the process dies between a send and the clearing.
"""

from __future__ import annotations

import asyncio
import logging

import apprise

from common.assets import ASSETS_EXCHANGE, PAIRS_EXCHANGE
from common.db import Store
from common.errors import StoreError
from common.log import redact
from common.models import Alert, Market
from common.retry import Backoff, GaveUp, Retry, retry
from common.ticks import iso

log = logging.getLogger(__name__)


def name(market: Market) -> str:
    """`bitfinex BTCUSD`; a pair across markets `BTC-USD across markets`; an asset `BTC (USD)`."""
    if market.exchange == PAIRS_EXCHANGE:
        return f"{market.symbol.upper()} across markets"
    if market.exchange == ASSETS_EXCHANGE:
        return f"{market.symbol.upper()} (USD)"
    return f"{market.exchange} {market.symbol.upper()}"


def message(alert: Alert) -> tuple[str, str]:
    """Title and body: market, price, hour average, ratio, time."""
    market = name(alert.market)
    title = f"{market}: price {alert.ratio:.2f}× its average"
    body = (
        f"{market} traded at {alert.price:.8g}, {alert.ratio:.2f}× its average of "
        f"{alert.average:.8g} over the previous {alert.points} points, at {iso(alert.t)}."
    )
    return title, body


def public_name(channel: apprise.Apprise) -> str:
    """The channel's URL as apprise masks it (tokens in the host or path shortened to their
    first and last character), with no query and no credentials: safe for logs."""
    url: str = channel[0].url(privacy=True)  # type: ignore[no-untyped-call]
    return redact(url.partition("?")[0])


class Notifier:
    def __init__(self, store: Store, urls: list[str], attempts: int = 6) -> None:
        self.store = store
        self.attempts = attempts
        self.channels: list[tuple[str, apprise.Apprise]] = []
        for url in urls:
            channel = apprise.Apprise()
            if not channel.add(url):
                scheme = url.partition("://")[0] if "://" in url else "?"
                raise ValueError(f"not a notification URL apprise understands: {scheme}://…")
            self.channels.append((public_name(channel), channel))
        self.queue: asyncio.Queue[Alert] = asyncio.Queue()
        self.queued: set[str] = set()  # ids waiting or in flight: one delivery each
        self.sent = 0
        self.failed = 0

    async def idle(self) -> None:
        """Return once every queued alert has been handled."""
        await self.queue.join()

    def submit(self, alert: Alert) -> None:
        if alert.id not in self.queued:
            self.queued.add(alert.id)
            self.queue.put_nowait(alert)

    async def resume(self) -> None:
        """Queue alerts recorded but not yet delivered (the process stopped in between)."""
        for alert in await self.store.pending_alerts():
            log.info("alert %s was recorded but not delivered; sending it now", alert.id)
            self.submit(alert)

    async def _send(self, alert: Alert) -> None:
        title, body = message(alert)
        if not self.channels:
            log.warning("ALERT %s (no TRACKER_NOTIFY_URLS set: logged only)", body)
        for name, channel in self.channels:

            async def send(channel: apprise.Apprise = channel, name: str = name) -> None:
                if not await channel.async_notify(body=body, title=title):
                    raise Retry(f"{name} refused or unreachable")

            try:
                await retry(
                    send,
                    f"notify {alert.id}",
                    backoff=Backoff(base=1, cap=30),
                    attempts=self.attempts,
                )
                self.sent += 1
            except GaveUp as exc:
                self.failed += 1
                log.error("alert %s not delivered to %s: %s", alert.id, name, exc)

    async def deliver(self, alert: Alert) -> None:
        """Send to every channel, then clear the alert's outbox mark."""
        await self._send(alert)
        try:
            await self.store.mark_notified(alert)
        except StoreError as exc:
            log.warning("alert %s delivered but not marked (%s); may be sent again", alert.id, exc)
        self.queued.discard(alert.id)

    async def flush(self) -> None:
        """Deliver everything queued now (a Lambda invocation ends after this)."""
        while not self.queue.empty():
            await self.deliver(self.queue.get_nowait())
            self.queue.task_done()

    async def run(self) -> None:
        """Deliver queued alerts one by one, forever (cancelled at shutdown)."""
        while True:
            alert = await self.queue.get()
            try:
                await self.deliver(alert)
            finally:
                self.queue.task_done()
