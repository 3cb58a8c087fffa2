"""Users' rules in the alerter: the history a condition needs, and the judging of each point
beside the house rule, against the rule book (alerter/rule_book.py: every rule, indexed by
market, and by level for crossings).

A point's cost grows with the rules it can fire, not with all the rules held: only the rules
of its (market, metric) are looked at, and of those the crossings only where the level lies
between the previous value and the new one (two bisections). A window is a running sum that
slides with the points (alerter/rule_windows.py): read whole once, then a chunk of its oldest
values now and then, from the board while it holds them, else from the table.

The book follows the `rules` table's change index (one Query a second): a rule created,
changed, paused or deleted takes effect within about a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from alerter.rule_book import NONE, Columns, RuleBook
from alerter.rule_windows import Spans
from common.conditions import (
    NO_WINDOW,
    Progress,
    Window,
    advance,
    needs_values,
    shared_progress,
    window_of,
)
from common.db import Store
from common.deliveries_store import DeliveriesStore, Fire, UserAlert
from common.errors import StoreError, StoreUnavailable
from common.lifecycle import sleep_unless
from common.messages import rule_payload
from common.models import METRICS, Market, Metric, Point
from common.rules import Rule, condition_dict
from common.rules_store import (
    TOMBSTONE_TTL,
    RulesStore,
    now_ms,
    rule_fields,
    rule_from_fields,
)
from common.window import Board

log = logging.getLogger(__name__)
FOLLOW_EVERY = 1.0  # seconds between two looks at the rules' change index
# A checkpoint older than this may miss deletions whose tombstones have expired.
CHECKPOINT_MAX_AGE = TOMBSTONE_TTL / 2
OVERLAP_MS = 5_000  # changes are asked for again this far back (clocks, index lag)
RULES_CHECKPOINT_EVERY = 300.0  # seconds: the rule book is large, the change index has the rest
CHECKPOINT_FORMAT = 2  # JSON lines (1: one JSON document, read whole)


class BookCopy(NamedTuple):
    at: float
    version: int
    columns: Columns  # the book's, copied


class History:
    """What the conditions ask about the past: the previous value, and the values of a span
    of ticks, from the board while it holds them, else from the table."""

    def __init__(self, store: Store, board: Board | None) -> None:
        self.store = store
        self.board = board
        self.before: dict[tuple[Market, int], Point | None] = {}  # one batch's reads
        # Markets the alerter read from the table this batch: every point after `start`.
        self.seeds: dict[Market, tuple[int, list[int], list[Point]]] = {}

    def clear(self) -> None:
        self.before.clear()
        self.seeds.clear()

    def seed(self, market: Market, start: int, points: list[Point]) -> None:
        """A market's points after `start`, as just read: its windows are built from them."""
        self.seeds[market] = (start, [p.t for p in points], points)

    def held(self, market: Market, metric: Metric, t: int) -> tuple[bool, float | None]:
        """The newest value before t from memory (the board, a seed): (found, value)."""
        if self.board is not None:
            series = self.board.series.get(market)
            if series is not None:
                held = series[metric]
                i = bisect_left(held.ticks, t)  # the newest held value before t
                if i:
                    return True, held.values[i - 1]
        seed = self.seeds.get(market)
        if seed is not None:
            _, ticks, points = seed
            for i in range(bisect_left(ticks, t) - 1, -1, -1):
                if (v := points[i].value(metric)) is not None:
                    return True, v
        if (market, t) in self.before:
            stored = self.before[(market, t)]
            return True, None if stored is None else stored.value(metric)
        return False, None

    async def prev(self, market: Market, metric: Metric, t: int) -> float | None:
        found, v = self.held(market, metric, t)
        if found:
            return v
        await self.read_before(market, t)
        return self.held(market, metric, t)[1]

    async def read_before(self, market: Market, t: int) -> None:
        self.before[(market, t)] = await self.store.point_before(market, t)

    async def between(
        self, market: Market, metric: Metric, lo: int, hi: int
    ) -> list[tuple[int, float]]:
        """The market's (tick, value) with lo ≤ tick < hi, oldest first."""
        board = self.board
        if board is not None and lo > board.seal_line():
            series = board.series.get(market)
            if series is None:
                return []
            held = series[metric]
            i, j = bisect_left(held.ticks, lo), bisect_left(held.ticks, hi)
            return list(zip(held.ticks[i:j], held.values[i:j], strict=True))
        seed = self.seeds.get(market)
        if seed is not None and lo > seed[0]:
            _, ticks, points = seed
            points = points[bisect_left(ticks, lo) : bisect_left(ticks, hi)]
        else:
            points = await self.store.query_points(market, lo - 1, hi - 1, consistent=True)
        return [(p.t, v) for p in points if (v := p.value(metric)) is not None]


class RuleJudge:
    """Judges each new point against the users' rules of its market; fires through one
    transaction per alert (alert, progress, deliveries) conditional on the alert's id."""

    def __init__(self, store: Store, board: Board | None, saved: Path | None = None) -> None:
        self.store = store
        self.saved = saved  # the rule book's checkpoint, beside the alerter's state
        self.rules = RulesStore(store)
        self.deliveries = DeliveriesStore(store)
        self.book = RuleBook()
        self.history = History(store, board)
        self.spans = Spans(self.history.between)
        self.fired = 0
        self.judged = 0
        self.loaded = False
        self.loading = asyncio.Lock()
        self.asked = 0  # when the change index was last read (ms)
        self.saved_version, self.saved_at = -1, 0.0  # the checkpoint's
        # The points stream the book is judged beside: its checkpoint is bound to it, as the
        # state checkpoint is, so that one left by another table is never taken for this one's.
        self.stream: str | None = None

    async def load(self) -> None:
        """The rule book: from its checkpoint and the changes since, else every rule from
        the table (the change index, read whole). Once: a second caller waits for the first."""
        async with self.loading:
            if not self.loaded:
                await self._load()

    async def _load(self) -> None:
        started = time.monotonic()
        since = await asyncio.to_thread(self._restore)
        asked = now_ms()
        async for rule in self.rules.changes(since):  # a page at a time: never all the items
            self.book.apply(rule)
        self.asked = asked
        self.loaded = True
        where = "the table" if since is None else "its checkpoint and the changes since"
        log.info(
            "%d user rule(s) loaded from %s in %.1f s",
            len(self.book),
            where,
            time.monotonic() - started,
        )

    def _restore(self) -> int | None:
        """Rules from the checkpoint; the change time to read the table from (None: all)."""
        if self.saved is None or not self.saved.exists():
            return None
        try:
            with self.saved.open() as lines:
                header = json.loads(next(lines))
                if header.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError(f"format {header.get('format')}, not {CHECKPOINT_FORMAT}")
                if header.get("stream") != self.stream:
                    raise ValueError(
                        f"written for stream {header.get('stream')!r}, now {self.stream!r}"
                    )
                if time.time() - header["at"] > CHECKPOINT_MAX_AGE:
                    log.info("rule book checkpoint older than the tombstones kept: not used")
                    return None
                for line in lines:  # one rule a line: never the whole book parsed at once
                    fields = json.loads(line)
                    rule = rule_from_fields(fields)
                    self.book.apply(rule)
                    self.book.advance(rule.id, shared_progress(Progress(*fields["progress"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration) as exc:
            log.warning(
                "rule book checkpoint %s not used (%s): reading every rule", self.saved, exc
            )
            self.book = RuleBook()
            return None
        return int(header["version"]) - OVERLAP_MS

    def snapshot(self) -> BookCopy:
        """What `save` writes: every live rule and its progress, as now (a shallow copy, taken
        on the event loop; `save` turns it into the file in a thread)."""
        return BookCopy(time.time(), self.book.version, self.book.copy())

    def checkpoint_due(self, now: float) -> bool:
        """The book changed since its checkpoint, and that is `RULES_CHECKPOINT_EVERY` old.
        Between two, the change index holds what changed (progress included)."""
        return (
            self.loaded
            and self.book.version != self.saved_version
            and now - self.saved_at >= RULES_CHECKPOINT_EVERY
        )

    def save(self, copy: BookCopy) -> None:
        """Write the rule book's checkpoint, a header line then one line per rule (so that
        100,000 rules never stand in memory as one document), then rename; in a thread."""
        if self.saved is None:
            return
        self.saved.parent.mkdir(parents=True, exist_ok=True)
        partial = self.saved.with_suffix(".partial")
        with partial.open("w") as out:
            header = {
                "format": CHECKPOINT_FORMAT,
                "at": copy.at,
                "version": copy.version,
                "stream": self.stream,
            }
            out.write(json.dumps(header) + "\n")
            for slot in copy.columns.slots():
                rule = copy.columns.rule(slot)
                fields = rule_fields(rule) | {"progress": list(rule.progress)}
                out.write(json.dumps(fields, separators=(",", ":")) + "\n")
        os.replace(partial, self.saved)
        self.saved_version, self.saved_at = copy.version, copy.at

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply rule changes as the API writes them, until stopped."""
        while not await sleep_unless(stop, FOLLOW_EVERY):
            try:
                if not self.loaded:
                    await self.load()
                    continue
                # Changes since the last look (a few seconds more: clocks, index lag), not since
                # the newest change: after a burst of writes, that would read the burst again
                # at every look.
                since = max(self.book.version, self.asked) - OVERLAP_MS
                asked = now_ms()
                changed = [r async for r in self.rules.changes(since) if self.book.apply(r)]
                self.asked = asked
            except StoreUnavailable:
                continue  # the store's Outage says so, once per outage
            except StoreError as exc:
                log.warning("cannot read rule changes (%s); trying again", exc)
                continue
            if changed:
                log.info(
                    "%d user rule change(s) applied; %d rule(s) held", len(changed), len(self.book)
                )

    async def judge_all(self, points: Iterable[Point]) -> None:
        self.history.clear()
        for point in points:
            await self.judge(point)

    async def judge(self, point: Point) -> None:
        fires: list[tuple[Rule, UserAlert, Progress]] = []
        for metric in METRICS:
            v = point.value(metric)
            if v is None:
                continue
            entry = self.book.index.get((point.market, metric))
            if entry is None:
                continue
            prev = await self.history.prev(point.market, metric, point.t)
            windows = {}
            if entry.widths:
                windows = await self.spans.windows(point.market, metric, point.t, v, entry.widths)
            for rule in self.book.of(point.market, metric, prev, v, windows):
                if rule.paused or not self._unjudged(rule, point.t):
                    continue
                fired = await self._judge(rule, point, metric, prev, v, windows)
                if fired is not None:
                    fires.append(fired)
        if fires:
            await self._fire(fires)

    def _unjudged(self, rule: Rule, t: int) -> bool:
        """A point this rule has not judged yet and may judge (a replay asks nothing)."""
        judged = rule.progress.judged
        return t >= rule.terms.created and (judged is None or t > judged)

    def reach(self, market: Market) -> int:
        """The longest window a rule of this market looks at (0: none)."""
        index = self.book.index
        return max(
            (index[(market, m)].widths[-1] for m in METRICS if index.get((market, m), NONE).widths),
            default=0,
        )

    async def prepare(self, changes: Iterable[tuple[Market, int]], concurrency: int = 16) -> None:
        """Before a batch, `concurrency` reads at a time rather than one by one as the points
        come: each market whose rules' windows are not held yet (a start, a restart, a new
        rule) read once for them all; then the previous point of each market with rules whose
        first point here has none in memory (a market new to this alerter)."""
        spans, seeds, index = self.spans.spans, self.history.seeds, self.book.index
        first: dict[Market, tuple[int, int]] = {}  # market → (first t, last t) in the batch
        for market, t in changes:
            if market in first:
                first[market] = (first[market][0], t)
            elif any((market, m) in index for m in METRICS):
                first[market] = (t, t)
        unread = [
            (market, span)
            for market, span in first.items()
            if market not in seeds
            and any(
                index.get((market, m), NONE).widths and (market, m) not in spans for m in METRICS
            )
        ]
        slots = asyncio.Semaphore(concurrency)

        async def read(market: Market, span: tuple[int, int]) -> None:
            start = span[0] - self.reach(market) - 1
            async with slots:
                points = await self.store.query_points(market, start, span[1], consistent=True)
            self.history.seed(market, start, points)

        async def before(market: Market, t: int) -> None:
            async with slots:
                await self.history.read_before(market, t)

        await asyncio.gather(*(read(m, span) for m, span in unread))
        unknown = [
            (market, t)
            for market, (t, _) in first.items()
            if not any(self.history.held(market, m, t)[0] for m in METRICS if (market, m) in index)
        ]
        await asyncio.gather(*(before(m, t) for m, t in unknown))

    def forget(self, market: Market) -> None:
        """The market's windows are read again at its next point (see rule_windows)."""
        self.spans.forget(market)

    def removed(self, market: Market, t: int) -> None:
        """A point was deleted: windows that held it are read again (a TTL expiry, long
        out of every window, changes nothing)."""
        self.spans.removed(market, t)

    async def _judge(
        self,
        rule: Rule,
        point: Point,
        metric: Metric,
        prev: float | None,
        v: float,
        windows: dict[int, Window],
    ) -> tuple[Rule, UserAlert, Progress] | None:
        """The rule's step at this point; what to record when it fires."""
        condition = rule.condition
        width = window_of(condition)
        window = NO_WINDOW if width is None else windows[width]
        if width is not None and needs_values(condition, window, v):
            values = await self.history.between(point.market, metric, point.t - width, point.t)
            window = Window.of([value for _, value in values])
        progress = rule.progress  # as judged here (the book's)
        after, fired, judgement = advance(condition, rule.terms, progress, point.t, v, prev, window)
        self.judged += 1
        if not fired:
            if after.state != progress.state:  # rearmed: remembered across restarts
                await self.rules.save_progress(rule, after)
            self.book.advance(rule.id, after)
            return None
        self.book.advance(rule.id, after)
        alert = UserAlert(
            rule.id,
            rule.user,
            point.market.exchange,
            point.market.symbol,
            metric,
            point.t,
            v,
            judgement.reference,
            condition_dict(condition),
            rule.name,
        )
        return rule, alert, after

    async def _fire(self, fires: list[tuple[Rule, UserAlert, Progress]]) -> None:
        """The alerts of one point, each with its deliveries and its rule's progress in one
        transaction (many alerts to a transaction: a crash tick fires thousands)."""
        recorded = await self.deliveries.record_all(
            [
                Fire(
                    alert,
                    rule,
                    after,
                    list(rule.channels),
                    rule_payload(alert.public(), rule.id, rule.name),
                )
                for rule, alert, after in fires
            ]
        )
        for (_, alert, _), new in zip(fires, recorded, strict=True):
            if not new:
                log.info("user alert %s already recorded (record delivered again)", alert.id)
                continue
            self.fired += 1
            log.info(
                "user alert %s (%s): %s %s = %.10g, reference %s",
                alert.id,
                alert.user,
                f"{alert.exchange}:{alert.symbol}",
                alert.metric,
                alert.value,
                alert.reference,
            )
