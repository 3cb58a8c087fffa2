"""What happens to each stream change: the board is updated and the alert rule applied.

The board (every market's window, see common/window.py) is kept here because the stream is
the one place that sees every write, whatever wrote it: the fetcher, a backfill, a test, a
restart. A market is loaded from the table the first time it is seen, so the windows after a
restart are exactly the stored points, never an estimate. Without a board (a Lambda), the
alert window is read from the table for each point instead.

The board holds the values of the alert window only; `settle` does its table work before
figures are published: it reads back the sealed points that left the rank window, and re-reads
markets a change to a sealed point made stale. A record created before its market was last
read from the table is already in what was read: for a sealed point it changes nothing (that
is what keeps a replay of hours of records from re-reading every market).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerter.notify import HouseOutbox
from alerter.records import Change
from alerter.rule import RuleConfig, evaluate
from alerter.user_rules import RuleJudge
from common.db import Store
from common.errors import AlreadyDone
from common.models import Alert, Market, Point
from common.settings import Settings
from common.window import Board, Series

log = logging.getLogger(__name__)
FAR_FUTURE = 2**40
# ApproximateCreationDateTime is rounded down: to the second on AWS, to the minute on DynamoDB
# Local (seen: 07:41:00 for a write at 07:41:56). A record created this close before a table
# read may not be in it, so it is applied (a sealed point: read again) rather than skipped.
CREATED_SLACK = 60.0
# Read-backs wait for a busy stream to drain, but no longer than this (a long replay).
READ_BACK_DEFER = 15.0


@dataclass(frozen=True, slots=True)
class Behind:
    """One market's prices with lo <= t < hi, read from the table for alert windows that lie
    behind the board's held values."""

    lo: int
    hi: int
    prices: Series


class Processor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        outbox: HouseOutbox,
        board: Board | None,
        rules: RuleJudge | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules  # users' rules, judged at each point after the house rule
        self.store = store
        self.outbox = outbox
        self.board = board
        self.rule = RuleConfig(
            settings.alert_multiplier,
            settings.alert_window,
            settings.min_points,
            settings.alert_cooldown,
        )
        # When each market's window was read from the table (the board is exact from then on
        # for every record this replica handles).
        self.loaded: dict[Market, float] = {}
        self.behind: dict[Market, Behind] = {}  # alert windows read for points behind the board
        self.last_handled = 0.0  # when the last batch was handled (monotonic)
        # The sealed points the next tick takes out of the window, read ahead while the stream
        # is quiet (None: not stored), and the window end they were read at.
        self.ahead: dict[tuple[Market, int], Point | None] = {}
        self.ahead_of = -1
        self.waiting: float | None = None  # since when read-backs wait (monotonic)
        self.taken_out = 0  # sealed points read back as they left the window
        self.reread = 0  # stale markets read again
        self.last_alert: dict[Market, int | None] = {}
        self.dirty = False
        self.handled = 0
        self.alerts = 0
        self.last_created: float | None = None

    def restore(self, last_alert: dict[Market, int | None], loaded: dict[Market, float]) -> None:
        """Markets restored from a state checkpoint, each read from the table at `loaded`."""
        self.last_alert.update(last_alert)
        self.loaded.update(loaded)
        self.dirty = True

    async def preload(self, markets: Iterable[Market], t: int, concurrency: int = 8) -> None:
        """Load the windows of known markets before serving figures (progress logged); `t`:
        the newest tick known (the last board's), so only the window is read, not the
        whole retention."""
        todo = [m for m in markets if m not in self.loaded]
        if not todo:
            return
        log.info("loading the windows of %d market(s) from the table", len(todo))
        await self._load_all(dict.fromkeys(todo, t), concurrency, progress=True)

    async def _load_all(
        self, first: dict[Market, int], concurrency: int, progress: bool = False
    ) -> None:
        """`_load` each market (at its first tick seen), `concurrency` at a time."""
        semaphore = asyncio.Semaphore(concurrency)
        done = 0
        started = time.monotonic()

        async def one(market: Market, t: int) -> None:
            nonlocal done
            async with semaphore:
                await self._load(market, t)
            done += 1
            if progress and (done % 100 == 0 or done == len(first)):
                log.info(
                    "loaded %d/%d market windows (%.1f s)",
                    done,
                    len(first),
                    time.monotonic() - started,
                )

        await asyncio.gather(*(one(m, t) for m, t in first.items()))

    async def _load(self, market: Market, t: int) -> None:
        """First sight of a market: its stored window and its last alert."""
        started = time.time()
        if self.board is not None:
            end = max(self.board.window_end, t)
            start = min(end - self.settings.rank_window, t - self.settings.alert_window - 1)
            if self.rules is not None:  # and the users' rules' windows, from the same read
                start = min(start, t - self.rules.reach(market) - 1)
            await self._read(market, start, seed=True)
        self.last_alert[market] = await self.store.last_alert_time(market)
        self.loaded[market] = started

    async def _read(self, market: Market, start: float, seed: bool = False) -> None:
        """Install a market's stored points after `start`; if a record changed it meanwhile
        (another shard's batch), merge them instead and read it again at the next settle.
        `seed`: the users' rules build this market's windows from the same points."""
        assert self.board is not None
        board = self.board
        board.watching.add(market)
        try:
            points = await self.store.query_points(market, start, FAR_FUTURE, consistent=True)
        finally:
            board.watching.discard(market)
        if market in board.touched:
            board.touched.discard(market)
            board.merge(points)
            board.stale.add(market)
        else:
            board.replace(market, points)
            if seed and self.rules is not None:
                self.rules.history.seed(market, int(start), points)

    async def settle(self, busy: bool = False, concurrency: int = 16) -> None:
        """The board's table work: re-read stale markets, take out sealed points that left the
        window. Runs beside `handle` (the publisher calls it): a read-back commutes with the
        records applied meanwhile, and a re-read that a record overtook is done again.
        `busy`: the stream has more to give right now; read-backs wait for it to drain (so
        that a tick's alerts go before its rank figures, which have the rest of the tick),
        but no longer than `READ_BACK_DEFER`."""
        board = self.board
        if board is None:
            return
        if self.behind:
            line = board.seal_line()
            self.behind = {m: span for m, span in self.behind.items() if span.hi > line}
        if board.stale:
            stale = list(board.stale)
            semaphore = asyncio.Semaphore(concurrency)

            async def reread(market: Market) -> None:
                async with semaphore:  # stale until read: a failed read is done again
                    started = time.time()
                    await self._read(market, board.horizon())
                    self.loaded[market] = started

            await asyncio.gather(*(reread(m) for m in stale))
            if self.ahead:  # read ahead before the change that made them stale: read again
                gone = set(stale)
                self.ahead = {k: p for k, p in self.ahead.items() if k[0] not in gone}
            self.reread += len(stale)
            log.info("read %d market window(s) again: a sealed point changed", len(stale))
            self.dirty = True
        if not board.pending:
            self.waiting = None
            return
        asked = {market: list(ticks) for market, ticks in board.pending.items()}
        keys = [(market, t) for market, ticks in asked.items() for t in ticks]
        unread = [k for k in keys if k not in self.ahead]
        now = time.monotonic()
        self.waiting = self.waiting or now
        if unread and busy and now - self.waiting < READ_BACK_DEFER:
            return  # what was read ahead is taken out at once: no table read waits
        found = await self.store.get_points(unread) if unread else {}
        ahead, self.ahead = self.ahead, {}
        found.update((k, p) for k in keys if (p := ahead.get(k)) is not None)
        self.taken_out += board.take_out(asked, found)
        self.dirty = True

    async def read_ahead(self) -> None:
        """Read the sealed points the next tick takes out of the window, so that its
        read-backs wait for no table read (the publisher calls it while the stream is
        quiet). A point changed after this read makes its market stale, and re-read, as a
        change to any sealed point does."""
        board = self.board
        if board is None or board.pending or board.stale or self.ahead_of == board.window_end:
            return
        end = board.window_end
        keys = [(m, t) for m, ticks in board.leaving_next().items() for t in ticks]
        found = await self.store.get_points(keys)
        self.ahead = {k: found.get(k) for k in keys}
        self.ahead_of = end

    async def handle(self, changes: Sequence[Change], since: float | None = None) -> None:
        """Apply changes in stream order; alerts are recorded before this returns.

        `since`: the records come from a shard another replica read until then; a market
        loaded before that may miss what the other handled, and is loaded again."""

        # Markets first seen in this batch are read from the table together, not one by one
        # (a new exchange, or the first tick after a start without a checkpoint: thousands),
        # each at its first change's tick.
        first_seen: dict[Market, int] = {}
        for change in changes:
            loaded = self.loaded.get(change.market)
            if loaded is None or (since is not None and loaded < since):
                first_seen.setdefault(change.market, change.t)
        if self.rules is not None:
            self.rules.history.clear()
            for market in first_seen:
                self.rules.forget(market)
        await self._load_all(first_seen, 16)
        if self.rules is not None:
            await self.rules.prepare((c.market, c.t) for c in changes if c.point is not None)
        for change in changes:
            if change.created is not None:
                self.last_created = change.created
            self.handled += 1
            if self.board is not None and not self._known(change):
                if change.point is None:
                    self.board.remove(change.market, change.t)
                    self.dirty = True
                elif self.board.apply(change.point):
                    self.dirty = True
            if change.point is None and self.rules is not None:
                self.rules.removed(change.market, change.t)
            if self.behind:
                self._follow(change)
            if change.point is not None:
                await self._judge(change.point)
                if self.rules is not None:
                    await self.rules.judge(change.point)
        self.last_handled = time.monotonic()

    def _known(self, change: Change) -> bool:
        """A change to a sealed point that the market's last table read already showed."""
        assert self.board is not None
        if change.created is None or change.t > self.board.seal_line():
            return False
        return change.created < self.loaded.get(change.market, 0.0) - CREATED_SLACK

    async def _window(self, point: Point) -> list[float]:
        lo, hi = point.t - self.rule.window, point.t
        if self.board is None:  # no memory: ask the table for lo <= t < hi
            return [p.price for p in await self.store.query_points(point.market, lo - 1, hi - 1)]
        if lo > self.board.seal_line():
            self.behind.pop(point.market, None)
            series = self.board.series.get(point.market)
            return series["price"].between(lo, hi) if series else []
        # Behind the held values (a replay that catches up, a backfill): read this window and
        # the next one's worth, which the market's following points will want.
        span = self.behind.get(point.market)
        if span is None or not span.lo <= lo < hi <= span.hi:
            end = lo + 2 * self.rule.window
            points = await self.store.query_points(point.market, lo - 1, end - 1)
            span = Behind(lo, end, Series.of(((p.t, p.price) for p in points), lo - 1))
            self.behind[point.market] = span
        return span.prices.between(lo, hi)

    def _follow(self, change: Change) -> None:
        """Keep a market's window read for a replay in step with the records applied after."""
        span = self.behind.get(change.market)
        if span is None or not span.lo <= change.t < span.hi:
            return
        if change.point is None:
            span.prices.delete(change.t)
        else:
            span.prices.upsert(change.t, change.point.price)

    async def _judge(self, point: Point) -> None:
        window = await self._window(point)
        verdict = evaluate(
            point.t, point.price, window, self.last_alert.get(point.market), self.rule
        )
        if not verdict.alert or verdict.average is None:
            return
        alert = Alert(point.market, point.t, point.price, verdict.average, verdict.points)
        # Deliver only what is still news; a replay of old records only records them.
        fresh = time.time() - point.t <= max(self.rule.window, 300)
        try:
            await self.outbox.record(alert, fresh)
        except AlreadyDone:
            log.info("alert %s already recorded (record delivered again)", alert.id)
        else:
            self.alerts += 1
            self.dirty = True  # publish: the service refreshes its answers, /alerts included
            log.warning(
                "alert %s: price %.8g is %.2f× the average %.8g of %d points",
                alert.id,
                alert.price,
                alert.ratio,
                alert.average,
                alert.points,
            )
            if not fresh:
                log.info(
                    "alert %s is %d s old: recorded, not notified", alert.id, time.time() - point.t
                )
        previous = self.last_alert.get(point.market)
        self.last_alert[point.market] = max(previous or alert.t, alert.t)
