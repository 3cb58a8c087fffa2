"""The delivery loop: find due deliveries, claim each, send it, record the outcome.

Apart from the alerter, so that a slow or dead receiver never slows the judging of points.
Every delivery is claimed with a lease before its send: a notifier killed mid-send leaves it
to be taken again once the lease ends (at least once; the receiver sees the same
`webhook-id`). Failures are retried with exponential backoff and jitter, or after the
receiver's `Retry-After`, until `TRACKER_DELIVERY_MAX_AGE`, then `failed`. A 410 disables the
channel. At most `senders.PER_HOST` sends are in flight to one host, `CONCURRENCY` in all.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import aiohttp

from common.channels import Channel
from common.channels_store import ChannelsStore
from common.db import Store
from common.deliveries_store import HOUSE, DeliveriesStore, Delivery
from common.errors import NotFound, StoreError, StoreUnavailable
from common.lifecycle import sleep_unless, touch_alive
from common.sealed import Sealer, SealError
from common.senders import (
    EMAIL_SCHEMAS,
    Outcome,
    apprise_label,
    check_house_urls,
    restrict_apprise,
    schemas_of,
    send,
    send_apprise,
    session,
)
from common.settings import Settings
from common.targets import networks
from common.users_store import UsersStore

log = logging.getLogger(__name__)
LEASE = 30.0  # seconds a claimed delivery is ours before another notifier may take it
CONCURRENCY = 64
POLL = 0.5  # seconds between looks at the outbox when it had nothing due
HEARTBEAT = 5.0  # seconds between two heartbeats (/status)
BACKOFF_BASE, BACKOFF_CAP = 2.0, 300.0
BURST = 20  # due deliveries from which they are claimed in transactions, not one by one
CHANNEL_CACHE = 2.0  # seconds a channel read is used for other deliveries to it


class Quota:
    """First attempts counted against each user's hourly limit, many in one write: those
    that ask while a user's count is being written are counted together by the next one."""

    def __init__(self, users: UsersStore, limit: int) -> None:
        self.users = users
        self.limit = limit
        self.waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self.counting: dict[str, asyncio.Task[None]] = {}

    async def admit(self, user: str, now: float) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(user, []).append(future)
        if user not in self.counting:
            self.counting[user] = asyncio.create_task(self._count(user, now))
        return await future

    async def _count(self, user: str, now: float) -> None:
        try:
            await asyncio.sleep(0)  # the attempts started with this one ask first
            while futures := self.waiting.pop(user, []):
                try:
                    fit = await self.users.count_deliveries(user, now, len(futures), self.limit)
                except Exception as exc:  # each attempt reports it (it stays pending)
                    for future in futures:
                        future.set_exception(exc)
                    continue
                for i, future in enumerate(futures):
                    future.set_result(i < fit)
        finally:
            del self.counting[user]


def next_delay(
    attempts: int, hint: float | None, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before attempt `attempts + 1`: the receiver's Retry-After if it gave one, else
    base·2^(attempts−1) capped, with full jitter over its upper half."""
    if hint is not None:
        return hint
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * float(2 ** max(0, attempts - 1)))
    return ceiling / 2 + rand() * ceiling / 2


class Deliverer:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.deliveries = DeliveriesStore(store)
        sealer = Sealer(settings.sealing_key()) if settings.secret_key else None
        self.channels = ChannelsStore(store, sealer) if sealer else None
        self.users = UsersStore(store)
        self.quota = Quota(self.users, settings.max_notifications)
        self.read_channels: dict[tuple[str, str], tuple[float, Channel | Exception]] = {}
        self.allowed = networks(settings.allow_targets)
        self.smtp = settings.smtp_url.get_secret_value() if settings.smtp_url else None
        restrict_apprise(EMAIL_SCHEMAS + schemas_of(settings.notify_urls))
        check_house_urls(settings.notify_urls)
        self.inflight: set[tuple[str, str]] = set()
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.http: aiohttp.ClientSession | None = None
        self.delivered = self.failed = self.retried = 0

    async def main(self, stop: asyncio.Event) -> None:
        log.info(
            "delivering from %s (max age %d s, allowed private targets: %s)",
            self.deliveries.deliveries,
            self.settings.delivery_max_age,
            ", ".join(self.settings.allow_targets) or "none",
        )
        async with session(self.allowed) as self.http:
            tasks: set[asyncio.Task[None]] = set()
            beat = 0.0
            while not stop.is_set():
                touch_alive("notifier", self.settings.worker_id)
                if time.monotonic() - beat > HEARTBEAT:
                    beat = time.monotonic()
                    await self.heartbeat()
                try:
                    due = await self.deliveries.due(int(time.time() * 1000), 200)
                except StoreUnavailable:  # the store's Outage says so, once per outage
                    await sleep_unless(stop, 2.0)
                    continue
                except StoreError as exc:
                    log.warning("cannot read the outbox (%s); trying again", exc)
                    await sleep_unless(stop, 2.0)
                    continue
                fresh = [d for d in due if (d.alert, d.channel) not in self.inflight]
                fresh = fresh[: max(0, CONCURRENCY - len(self.inflight))]  # no claim waits
                burst = len(fresh) >= BURST  # claimed here, together; else each by its attempt
                claimed: list[Delivery | None] = [None] * len(fresh)
                if burst:
                    try:
                        lease = int((time.time() + LEASE) * 1000)
                        claimed = await self.deliveries.claim_all(fresh, lease)
                    except StoreError as exc:
                        log.warning("cannot claim deliveries (%s); trying again", exc)
                        await sleep_unless(stop, 2.0)
                        continue
                for delivery, taken in zip(fresh, claimed, strict=True):
                    if burst and taken is None:
                        continue  # another notifier has it, or it was settled meanwhile
                    self.inflight.add((delivery.alert, delivery.channel))
                    task = asyncio.create_task(self._attempt(delivery, taken))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await sleep_unless(stop, 0.05 if fresh else POLL)
            if tasks:
                await asyncio.wait(tasks, timeout=10)

    async def heartbeat(self) -> None:
        """What /status shows of the delivery worker."""
        fields: dict[str, float | int | str] = {
            "at": time.time(),
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
            "in_flight": len(self.inflight),
        }
        try:
            await self.store.put_heartbeat("notifier", fields)
        except StoreError as exc:
            log.debug("heartbeat not written: %s", exc)

    async def _attempt(self, delivery: Delivery, claimed: Delivery | None = None) -> None:
        try:
            async with self.slots:
                await self.attempt(delivery, claimed)
        except StoreError as exc:
            log.warning(
                "delivery %s → %s: %s; it stays pending", delivery.alert, delivery.channel, exc
            )
        except Exception:
            log.exception("delivery %s → %s failed unexpectedly", delivery.alert, delivery.channel)
        finally:
            self.inflight.discard((delivery.alert, delivery.channel))

    async def attempt(self, seen: Delivery, claimed: Delivery | None = None) -> None:
        """One attempt at a due delivery (`claimed`: already claimed, with others)."""
        now = time.time()
        if claimed is None:
            claimed = await self.deliveries.claim(seen, int((now + LEASE) * 1000))
        if claimed is None:
            return  # another notifier has it, or it was settled meanwhile
        age = now - claimed.created_ms / 1000
        if age > self.settings.delivery_max_age:
            await self._settle(
                claimed,
                Outcome(False, claimed.last_status, claimed.last_error, retry=False),
                "failed",
            )
            return
        if not await self.within_quota(claimed, now):
            await self.deliveries.settle(
                claimed,
                "suppressed",
                None,
                f"over TRACKER_MAX_NOTIFICATIONS ({self.settings.max_notifications} per hour)",
            )
            log.info(
                "delivery %s → %s suppressed: the user's hourly limit is reached",
                claimed.alert,
                claimed.channel,
            )
            return
        outcome, label = await self.send(claimed)
        if outcome.delivered:
            await self._settle(claimed, outcome, "delivered", label)
            return
        if outcome.gone and self.channels is not None and claimed.user is not None:
            await self.channels.disable(
                claimed.user, claimed.channel, "the receiver answered 410 Gone"
            )
            self.read_channels.pop((claimed.user, claimed.channel), None)
            log.warning(
                "channel %s (%s) disabled: the receiver answered 410 Gone", claimed.channel, label
            )
        wait = next_delay(claimed.attempts, outcome.retry_after)
        if not outcome.retry or age + wait > self.settings.delivery_max_age:
            await self._settle(claimed, outcome, "failed", label)
            return
        self.retried += 1
        log.info(
            "delivery %s → %s (%s) attempt %d failed: %s; next in %.0f s",
            claimed.alert,
            claimed.channel,
            label,
            claimed.attempts,
            outcome.error,
            wait,
        )
        await self.deliveries.settle(
            claimed, "pending", outcome.status, outcome.error, int((time.time() + wait) * 1000)
        )

    async def within_quota(self, delivery: Delivery, now: float) -> bool:
        """A user's delivery counts against the hour's limit once, at its first attempt."""
        if delivery.user is None or delivery.attempts != 1:
            return True
        return await self.quota.admit(delivery.user, now)

    async def channel(self, user: str, channel_id: str) -> Channel:
        """The channel, read at most every `CHANNEL_CACHE` seconds (a crash tick sends
        thousands of deliveries to one); NotFound, SealError as the read raised them."""
        assert self.channels is not None
        now = time.monotonic()
        read = self.read_channels.get((user, channel_id))
        if read is None or read[0] < now:
            try:
                got: Channel | Exception = await self.channels.get(user, channel_id)
            except (NotFound, SealError) as exc:
                got = exc
            if len(self.read_channels) > 10_000:
                self.read_channels = {k: v for k, v in self.read_channels.items() if v[0] >= now}
            read = self.read_channels[(user, channel_id)] = (now + CHANNEL_CACHE, got)
        if isinstance(read[1], Exception):
            raise read[1]
        return read[1]

    async def _settle(
        self, delivery: Delivery, outcome: Outcome, status: str, label: str = ""
    ) -> None:
        assert status in ("delivered", "failed")
        await self.deliveries.settle(delivery, status, outcome.status, outcome.error)  # type: ignore[arg-type]
        if status == "delivered":
            self.delivered += 1
            log.info(
                "delivered %s → %s (%s) at attempt %d",
                delivery.alert,
                delivery.channel,
                label,
                delivery.attempts,
            )
        else:
            self.failed += 1
            log.error(
                "delivery %s → %s (%s) failed for good after %d attempt(s): %s",
                delivery.alert,
                delivery.channel,
                label,
                delivery.attempts,
                outcome.error,
            )

    async def send(self, delivery: Delivery) -> tuple[Outcome, str]:
        """One attempt; the label names the channel for logs (masked, never a secret)."""
        if delivery.channel.startswith(HOUSE):
            return await self._send_house(delivery)
        if self.channels is None or delivery.user is None:
            return Outcome(
                False, None, "TRACKER_SECRET_KEY is not set", retry=True
            ), delivery.channel
        try:
            channel = await self.channel(delivery.user, delivery.channel)
        except NotFound:
            return Outcome(False, None, "the channel was deleted", retry=False), delivery.channel
        except SealError as exc:
            return Outcome(False, None, str(exc), retry=False), delivery.channel
        label = f"{channel.kind} {channel.target}"
        if channel.disabled:
            return Outcome(False, None, f"channel disabled: {channel.disabled}", retry=False), label
        assert self.http is not None
        return await send(
            self.http, channel, delivery.alert, delivery.payload, self.allowed, self.smtp
        ), label

    async def _send_house(self, delivery: Delivery) -> tuple[Outcome, str]:
        index = int(delivery.channel.removeprefix(HOUSE))
        urls = self.settings.notify_urls
        if index >= len(urls):
            return Outcome(
                False, None, "no such TRACKER_NOTIFY_URLS entry any more", retry=False
            ), delivery.channel
        url = urls[index]
        label = apprise_label(url)
        payload = delivery.payload
        return await send_apprise(url, payload["title"], payload["text"]), label
