"""What happens to each stream change: the board is updated and the alert rule applied.

The board (every market's window, see common/window.py) is kept here because the stream is
the one place that sees every write, whatever wrote it: the fetcher, a backfill, a test, a
restart. A market is loaded from the table the first time it is seen, so the windows after a
restart are exactly the stored points, never an estimate. Without a board (a Lambda), the
alert window is read from the table for each point instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from alerter.notify import Notifier
from alerter.records import Change
from alerter.rule import RuleConfig, evaluate
from common.db import Store
from common.errors import AlreadyDone
from common.models import Alert, Market, Point
from common.settings import Settings
from common.window import Board

log = logging.getLogger(__name__)
FAR_FUTURE = 2**40


class Processor:
    def __init__(
        self, settings: Settings, store: Store, notifier: Notifier, board: Board | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.notifier = notifier
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
        self.last_alert: dict[Market, int | None] = {}
        self.dirty = False
        self.handled = 0
        self.alerts = 0
        self.last_created: float | None = None

    def restore(self, last_alert: dict[Market, int | None], at: float) -> None:
        """Markets restored from a state checkpoint written at `at`: loaded as of then."""
        self.last_alert.update(last_alert)
        self.loaded.update(dict.fromkeys(last_alert, at))
        self.dirty = True

    async def preload(self, markets: Iterable[Market], concurrency: int = 8) -> None:
        """Load the windows of known markets before serving figures (progress logged)."""
        todo = [m for m in markets if m not in self.loaded]
        if not todo:
            return
        log.info("loading the windows of %d market(s) from the table", len(todo))
        await self._load_all(dict.fromkeys(todo, 0), concurrency, progress=True)

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
            self.board.load(await self.store.query_points(market, start, FAR_FUTURE))
        self.last_alert[market] = await self.store.last_alert_time(market)
        self.loaded[market] = started

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
        await self._load_all(first_seen, 16)
        for change in changes:
            if change.created is not None:
                self.last_created = change.created
            self.handled += 1
            if change.point is None:
                if self.board is not None:
                    self.board.remove(change.market, change.t)
                    self.dirty = True
                continue
            if self.board is not None and self.board.apply(change.point):
                self.dirty = True
            await self._judge(change.point)

    async def _window(self, point: Point) -> list[float]:
        lo, hi = point.t - self.rule.window, point.t
        if self.board is not None and lo > self.board.horizon():
            series = self.board.series.get(point.market)
            return series["price"].between(lo, hi) if series else []
        # Not covered by memory (or no memory at all): ask the table for lo <= t < hi.
        return [p.price for p in await self.store.query_points(point.market, lo - 1, hi - 1)]

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
            await self.store.put_alert(alert, pending=fresh)
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
            if fresh:
                self.notifier.submit(alert)
            else:
                log.info(
                    "alert %s is %d s old: recorded, not notified", alert.id, time.time() - point.t
                )
        previous = self.last_alert.get(point.market)
        self.last_alert[point.market] = max(previous or alert.t, alert.t)
