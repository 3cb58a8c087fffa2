"""What the workers have done, as the tables show it: the positive signals a negative check
waits for (a replayed alerter has read past the record; every delivery is settled)."""

from __future__ import annotations

import time

from common.db import Store
from common.deliveries_store import DeliveriesStore
from tests.helpers.waiting import wait_for


async def read_past(store: Store, t: int, since: float, within: float = 60) -> None:
    """Wait until an alerter started at `since` has published a board past tick `t`: it has
    read the stream beyond that tick's records (or its checkpoint was already past them)."""

    async def past() -> bool:
        heads = await store.board_heads()
        return any(h.written_at > since and h.window_end > t for h in heads)

    await wait_for(past, within, f"a board past tick {t}, published since {since}")


async def settled(store: Store, within: float = 60) -> None:
    """Wait until no delivery is pending or due to be retried: whatever was recorded was
    sent (or gave up)."""
    outbox = DeliveriesStore(store)

    async def none_due() -> bool:
        return not await outbox.due(int(time.time() * 1000) + 10**12)

    await wait_for(none_due, within, "every delivery settled")
