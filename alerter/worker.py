"""The alerter's lifecycle: load windows → read the stream → publish the board, until stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from alerter import checkpoint
from alerter.notify import HouseOutbox
from alerter.processor import Processor
from alerter.stream import StreamReader
from alerter.user_rules import RuleJudge
from common.db import Store
from common.errors import StoreError, StoreUnavailable
from common.lifecycle import sleep_unless, touch_alive
from common.retry import until_answered
from common.settings import Settings
from common.snapshot import Snapshot, behind, encode
from common.ticks import between_ticks
from common.window import Board

if TYPE_CHECKING:
    from types_aiobotocore_dynamodbstreams import DynamoDBStreamsClient

log = logging.getLogger(__name__)
# A board of many markets costs CPU to build and encode, which the stream wants too: after a
# publish, the next waits this many times its cost, so that publishing takes at most a fifth
# of the alerter's time (20,000 markets: 0.2 s a board, so one a second, not four).
PAUSE_PER_COST = 4.0
# While a tick's records pour in, a board would be out of date before it is read and its CPU
# would slow the reading: boards (and checkpoints) wait for the stream to go quiet (caught up
# on every shard, nothing handled for `QUIET` seconds), but not longer than `BUSY_BOARD_EVERY`.
QUIET = 0.5
BUSY_BOARD_EVERY = 10.0


def publish_pause(every: float, cost: float) -> float:
    """Seconds until the next publish, after one that cost `cost` seconds of CPU."""
    return max(every, PAUSE_PER_COST * cost)


class Alerter:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        streams: DynamoDBStreamsClient,
        publish_every: float = 0.25,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = HouseOutbox(store, settings)
        self.board = Board.holding_alert_window(
            settings.rank_window, settings.alert_window, settings.fetch_interval
        )
        self.rules = RuleJudge(store, self.board, settings.state_file.with_suffix(".rules"))
        self.processor = Processor(settings, store, self.outbox, self.board, self.rules)
        self.reader = StreamReader(store, streams, settings.worker_id, self.processor.handle)
        self.publish_every = publish_every
        self.publish_cost = 0.0  # CPU seconds the last board took to build and encode
        self.next_publish = 0.0  # monotonic: no board before this (the pause after the last)
        self.last_board = 0.0  # monotonic: when the last board was built
        self.parts = 0
        self.published = 0.0  # when the last board written was made
        self.publishing = False  # a board is being written (`dirty` is cleared before)
        self.started = False  # a checkpoint is written only of a state that started up
        self.checkpointed = 0.0

    async def startup(self) -> None:
        owner = self.settings.worker_id
        touch_alive("alerter", owner)
        heads = await self.store.board_heads()
        self.parts = next((h.parts for h in heads if h.owner == owner), 0)
        if heads:
            newest = max(h.window_end for h in heads)
            window = self.settings.rank_window
            gone = [h for h in heads if h.owner != owner and behind(h.window_end, newest, window)]
            if gone:
                log.info("dropping the boards of %s (gone)", ", ".join(h.owner for h in gone))
                await self.store.drop_boards(gone)
        self.reader.stream = self.rules.stream = await self.store.stream_arn()
        if not self.rules.loaded:
            await self.rules.load()
        await self.resume(self.reader.stream)
        previous = await self.store.get_snapshot()
        if previous is not None:
            # Markets on the last board that the checkpoint did not restore: from the table.
            await self.processor.preload((r.market for r in previous.rows), previous.window_end)
            self.processor.dirty = True  # publish the rebuilt figures, not the old ones
        self.started = True

    async def resume(self, stream: str) -> None:
        """Restore the state checkpoint, if there is a usable one: its markets need no reading
        from the table, and the reader resumes each of its shards from its position."""
        state = checkpoint.load(self.settings, stream, self.board)
        if state is None:
            return
        for shard, position in state.positions.items():
            lease = await self.reader.leases.get(shard)
            ended = lease.get("checkpoint", {}).get("S")
            if lease.get("done") and ended != position:
                # Read to its end after the checkpoint: its last records are in no state.
                log.warning(
                    "state checkpoint not used: shard %s was read past it to its end; "
                    "reading the table instead",
                    shard,
                )
                self.board.clear()
                return
        self.reader.resume = state.positions
        self.reader.positions = dict(state.positions)
        self.processor.restore(state.last_alert, state.loaded)

    async def save_state(self, force: bool = False) -> None:
        """Write the state checkpoint (the copy here, compression and the write in a thread)."""
        if not self.started:
            return  # never replace a good checkpoint by a state that did not start up
        started = time.monotonic()
        head, chunks = checkpoint.capture(
            self.settings,
            self.board,
            self.reader.stream,
            self.reader.positions,
            self.processor.last_alert,
            self.processor.loaded,
            time.time(),
        )
        rules = self.rules.snapshot() if force or self.rules.checkpoint_due(time.time()) else None
        try:
            size = await asyncio.to_thread(checkpoint.write, self.settings, head, chunks)
            if rules is not None:
                await asyncio.to_thread(self.rules.save, rules)
        except OSError as exc:
            log.warning("state checkpoint not written (%s)", exc)
            return
        self.checkpointed = time.time()
        log.debug(
            "state checkpoint: %d market(s), %.1f MB in %.2f s",
            len(self.board.series),
            size / 1e6,
            time.monotonic() - started,
        )

    async def publish(self, paced: bool = True) -> None:
        """Write the board snapshot the service reads, if anything changed, once the board's
        table work is done (its figures are then those of the stored points); `paced`: not
        before the pause after the last board is over (the table work is done all the same)."""
        busy = self.busy()
        try:
            await self.processor.settle(busy)
        except StoreUnavailable:
            return  # the store's Outage says so, once per outage
        except StoreError as exc:
            log.warning("board not settled (%s); retrying", exc)
            return
        if not self.processor.dirty or not self.board.settled:
            return
        if paced:
            now = time.monotonic()
            if now < self.next_publish or (busy and now - self.last_board < BUSY_BOARD_EVERY):
                return
        self.processor.dirty = False
        self.last_board = time.monotonic()
        began = time.thread_time()
        snapshot = Snapshot(
            self.board.window_end,
            self.settings.rank_window,
            time.time(),
            tuple(self.board.rows()),
            self.settings.worker_id,
        )
        parts = encode(snapshot)
        self.publish_cost = time.thread_time() - began
        self.next_publish = time.monotonic() + publish_pause(self.publish_every, self.publish_cost)
        self.publishing = True
        try:
            self.parts = await self.store.put_snapshot(snapshot, self.parts, parts)
            self.published = snapshot.written_at
        except StoreUnavailable:
            self.processor.dirty = True  # the store's Outage says so, once per outage
        except StoreError as exc:
            self.processor.dirty = True
            log.warning("board snapshot not written (%s); retrying", exc)
        finally:
            self.publishing = False

    async def read_ahead(self) -> None:
        try:
            await self.processor.read_ahead()
        except StoreUnavailable:
            pass  # the store's Outage says so; the read-backs read then
        except StoreError as exc:
            log.warning("sealed points not read ahead (%s); read back at the tick", exc)

    def busy(self) -> bool:
        """The stream has more to give right now: a shard's last read was a full page (a
        hint: DynamoDB may also end a page early), or a batch was handled a moment ago."""
        return not self.reader.caught_up or time.monotonic() - self.processor.last_handled < QUIET

    def quiet(self) -> bool:
        """The stream quiet between two ticks, away from the fetcher's writes: the time for
        the work that can wait (reading ahead, checkpoints)."""
        return not self.busy() and between_ticks(time.time(), self.settings.fetch_interval)

    async def heartbeat(self) -> None:
        created = self.processor.last_created
        fields: dict[str, float | int | str] = {
            "at": time.time(),
            "records": self.processor.handled,
            "alerts": self.processor.alerts,
            "notifications_queued": self.outbox.queued,
            "shards": len(self.reader.readers),
            "markets": len(self.board.series),
            "taken_out": self.processor.taken_out,  # sealed points read back leaving the window
            "reread": self.processor.reread,  # markets read again: a sealed point changed
            "window_end": self.board.window_end,
            "published": self.published,
            "checkpointed": self.checkpointed,  # when the state checkpoint was last written
            "user_rules": len(self.rules.book),
            "user_alerts": self.rules.fired,
        }
        if created is not None:
            fields["last_record_created"] = created
        fields |= self.store.outage.figures()
        try:
            await self.store.put_heartbeat("alerter", fields)
        except StoreError as exc:
            log.debug("heartbeat not written: %s", exc)

    async def _publisher(self, stop: asyncio.Event) -> None:
        """Every `publish_every`: the board's table work, and a board when one is due (so
        the read-backs of a tick start as soon as its records are in, whatever the pause)."""
        beat = saved = time.monotonic()
        while not await sleep_unless(stop, self.publish_every):
            touch_alive("alerter", self.settings.worker_id)
            await self.publish()
            if self.quiet():
                await self.read_ahead()
            if time.monotonic() - beat > 5:
                await self.heartbeat()
                beat = time.monotonic()
            due = time.monotonic() - saved - self.settings.checkpoint_interval
            # Not while a tick's records pour in (the copy takes the loop for a moment), but
            # not late by another interval (a long replay, a stream that is never quiet).
            if due > 0 and (self.quiet() or due > self.settings.checkpoint_interval):
                await self.save_state()
                saved = time.monotonic()

    async def main(self, stop: asyncio.Event) -> None:
        """Start up (waiting out DynamoDB if it is away), then read the stream until `stop`;
        only StoreMisconfigured ends it early."""
        publisher = asyncio.create_task(self._publisher(stop), name="publisher")
        follower = asyncio.create_task(self.rules.follow(stop), name="rules")
        try:
            await until_answered(self.startup, stop)
            await self.reader.run(stop)
        finally:
            stop.set()
            await publisher
            await follower
            await self.close()

    async def close(self) -> None:
        """Publish the last figures, a heartbeat and a checkpoint, then stop."""
        await self.publish(paced=False)
        await self.heartbeat()
        await self.save_state(force=self.rules.loaded)
        log.info(
            "stopped after %d record(s) and %d alert(s)",
            self.processor.handled,
            self.processor.alerts,
        )
