"""The house rule's way out: the outbox, like every user's alert.

A fresh alert is written together with one pending delivery per `TRACKER_NOTIFY_URLS` entry
(channel `house-<i>`), in one transaction conditional on the alert's id; the delivery worker
(`tracker deliver`, notifier/) sends them, retried and visible like any delivery. So an alerter
that dies after the write loses nothing, and one that replays the record sends nothing twice.
"""

from __future__ import annotations

import logging

from common.db import Store
from common.deliveries_store import HOUSE, DeliveriesStore
from common.messages import house_payload, message
from common.models import Alert
from common.settings import Settings

log = logging.getLogger(__name__)


class HouseOutbox:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.deliveries = DeliveriesStore(store)
        self.channels = [f"{HOUSE}{i}" for i in range(len(settings.notify_urls))]
        self.queued = 0

    async def record(self, alert: Alert, fresh: bool) -> None:
        """The alert, with its deliveries when it is still news; AlreadyDone if recorded."""
        if not fresh or not self.channels:
            await self.store.put_alert(alert)
            if fresh:
                _, body = message(alert)
                log.warning("ALERT %s (no TRACKER_NOTIFY_URLS set: logged only)", body)
            return
        await self.deliveries.record_house(alert, self.channels, house_payload(alert))
        self.queued += len(self.channels)
