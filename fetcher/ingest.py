"""Writing ticks without losing any: a bounded buffer that a background writer drains.

A tick's points join the back of the buffer at once, so a slow or absent DynamoDB never
delays the next fetch. The writer drains the buffer front to back (oldest tick first); while
DynamoDB is unreachable it backs off and the points wait in memory. When the bound is reached
the oldest batches are dropped, and the log says how many points went.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque

from common.db import Store
from common.errors import StoreError, StoreMisconfigured
from common.lifecycle import sleep_unless
from common.retry import Backoff
from fetcher.spool import Batch, Spool

__all__ = ["Batch", "Ingest"]

log = logging.getLogger(__name__)


class Ingest:
    def __init__(self, store: Store, max_batches: int, spool: Spool | None = None) -> None:
        self.store = store
        self.max_batches = max_batches
        self.spool = spool
        self.buffer: deque[Batch] = deque()
        self.dropped_points = 0
        self.written_points = 0
        self.written_by_source: Counter[str] = Counter()
        self.newest_written = 0
        self.newest_by_source: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._backoff = Backoff(base=0.25, cap=5.0)

    @property
    def depth(self) -> int:
        """Points waiting in memory."""
        return sum(len(b.points) for b in self.buffer)

    def resume(self) -> None:
        """Queue what the last process left in the spool, before anything new."""
        if self.spool is None:
            return
        left = self.spool.load()
        self.spool.clear()
        if left:
            log.info(
                "resuming %d point(s) of %d tick(s) the last run fetched but did not write",
                sum(len(b.points) for b in left),
                len(left),
            )
        for batch in left:
            self.submit(batch)

    def submit(self, batch: Batch) -> None:
        """Queue a batch for the writer; drop the oldest batches beyond the bound."""
        self.buffer.append(batch)
        if self.spool is not None:
            self.spool.append(batch)
        while len(self.buffer) > self.max_batches:
            gone = self.buffer.popleft()
            if self.spool is not None:
                self.spool.done(gone)
            self.dropped_points += len(gone.points)
            log.error(
                "buffer full (%d batches): dropped %d points of %s tick %d (%d dropped so far)",
                self.max_batches,
                len(gone.points),
                gone.source,
                gone.t,
                self.dropped_points,
            )
        self.wake()

    async def drain(self) -> bool:
        """Write buffered batches oldest first; False if the store refused one (it stays)."""
        async with self._lock:
            while self.buffer:
                batch = self.buffer[0]
                try:
                    await self.store.put_points(batch.points)
                except StoreMisconfigured:
                    raise  # no wait will help: the fetcher stops and says why
                except StoreError as exc:
                    if not self._backoff.attempt:  # the first failure of a run of them
                        log.warning(
                            "points not written (%s); %d point(s) of %d batch(es) kept in "
                            "memory, written when DynamoDB answers",
                            exc,
                            self.depth,
                            len(self.buffer),
                        )
                    return False
                self.buffer.popleft()
                if self.spool is not None:
                    if self.buffer:
                        self.spool.done(batch)
                    else:
                        self.spool.clear()
                self.written_points += len(batch.points)
                self.written_by_source[batch.source] += len(batch.points)
                self.newest_written = max(self.newest_written, batch.t)
                self.newest_by_source[batch.source] = max(
                    self.newest_by_source.get(batch.source, 0), batch.t
                )
                if self.buffer and self._backoff.attempt:
                    log.info(
                        "wrote buffered %s tick %d; %d batch(es) still waiting",
                        batch.source,
                        batch.t,
                        len(self.buffer),
                    )
            return True

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """The writer: drain whenever something arrives, backing off while the store is down.
        Returns once `stop` is set and it is woken (`close` flushes what is left)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if stop.is_set():
                return
            if await self.drain():
                if self._backoff.attempt:
                    log.info("store reachable again; buffer drained")
                self._backoff.reset()
                continue
            await sleep_unless(stop, self._backoff.next_delay())
            self.wake()
