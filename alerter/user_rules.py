"""Users' rules in the alerter: the rule book (indexed by market, and by level for crossings),
the history a condition needs, and the judging of each point beside the house rule.

A point's cost grows with the rules it can fire, not with all the rules held: only the rules
of its (market, metric) are looked at, and of those the crossings only where the level lies
between the previous value and the new one (two bisections). Windows are read from the board
while they lie within the values it holds (the alert window), else from the table, once per
(market, window) and batch of records; nothing per window is kept, so memory per market does
not depend on the rules' windows.

The book follows the `rules` table's change index (one Query a second): a rule created,
changed, paused or deleted takes effect within about a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.conditions import CrossesAbove, CrossesBelow, Progress, advance, window_of
from common.db import Store
from common.deliveries_store import DeliveriesStore, UserAlert
from common.errors import AlreadyDone, StoreError, StoreUnavailable
from common.lifecycle import sleep_unless
from common.messages import rule_payload
from common.models import METRICS, Market, Metric, Point
from common.rules import Rule, condition_dict
from common.rules_store import TOMBSTONE_TTL, RulesStore, rule_fields, rule_from_fields
from common.window import Board

log = logging.getLogger(__name__)
FOLLOW_EVERY = 1.0  # seconds between two looks at the rules' change index
# A checkpoint older than this may miss deletions whose tombstones have expired.
CHECKPOINT_MAX_AGE = TOMBSTONE_TTL / 2
OVERLAP_MS = 5_000  # changes are asked for again this far back (clocks, index lag)
FIRING = 16  # alerts of one point recorded at once (a crash tick fires thousands)


@dataclass
class Levels:
    """Crossing rules of one direction, sorted by level."""

    levels: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def add(self, level: float, rule_id: str) -> None:
        i = bisect_right(self.levels, level)
        self.levels.insert(i, level)
        self.ids.insert(i, rule_id)

    def remove(self, level: float, rule_id: str) -> None:
        i = bisect_left(self.levels, level)
        while self.ids[i] != rule_id:
            i += 1
        del self.levels[i], self.ids[i]

    def within(self, lo: int, hi: int) -> list[str]:
        return self.ids[lo:hi]


@dataclass
class MarketRules:
    above: Levels = field(default_factory=Levels)
    below: Levels = field(default_factory=Levels)
    windowed: dict[str, None] = field(default_factory=dict)  # insertion-ordered set of ids

    def __len__(self) -> int:
        return len(self.above.ids) + len(self.below.ids) + len(self.windowed)

    def candidates(self, prev: float | None, v: float) -> list[str]:
        """The rules this value can fire: crossings of a level in (prev, v] upward or
        [v, prev) downward, and every windowed rule. No previous value: no crossing."""
        found = list(self.windowed)
        if prev is not None:
            up = self.above.levels
            found += self.above.within(bisect_right(up, prev), bisect_right(up, v))
            down = self.below.levels
            found += self.below.within(bisect_left(down, v), bisect_left(down, prev))
        return found


class RuleBook:
    """Every live rule, by id and by (market, metric); `version`: the newest change seen."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.progress: dict[str, Progress] = {}  # each rule's, as judged here since loaded
        self.index: dict[tuple[Market, Metric], MarketRules] = {}
        self.version = -1

    def __len__(self) -> int:
        return len(self.rules)

    def _unindex(self, rule: Rule) -> None:
        key = (rule.market, rule.metric)
        entry = self.index[key]
        if isinstance(rule.condition, CrossesAbove):
            entry.above.remove(rule.condition.level, rule.id)
        elif isinstance(rule.condition, CrossesBelow):
            entry.below.remove(rule.condition.level, rule.id)
        else:
            entry.windowed.pop(rule.id, None)
        if not entry:
            del self.index[key]

    def _index(self, rule: Rule) -> None:
        entry = self.index.setdefault((rule.market, rule.metric), MarketRules())
        if isinstance(rule.condition, CrossesAbove):
            entry.above.add(rule.condition.level, rule.id)
        elif isinstance(rule.condition, CrossesBelow):
            entry.below.add(rule.condition.level, rule.id)
        else:
            entry.windowed[rule.id] = None

    def apply(self, rule: Rule) -> bool:
        """Take a rule as the table has it now; False when it is not newer than held."""
        self.version = max(self.version, rule.changed)
        held = self.rules.get(rule.id)
        if held is not None and held.changed >= rule.changed:
            return False
        progress = rule.progress
        if held is not None:
            self._unindex(held)
            del self.rules[rule.id]
            judged = self.progress.pop(rule.id)
            if progress._replace(judged=judged.judged) == judged:  # the same, judged further
                progress = judged
        if rule.deleted:
            return held is not None
        self.rules[rule.id] = rule
        self.progress[rule.id] = progress
        self._index(rule)
        return True

    def advance(self, rule_id: str, progress: Progress) -> None:
        if rule_id in self.rules:
            self.progress[rule_id] = progress

    def of(self, market: Market, metric: Metric, prev: float | None, v: float) -> list[Rule]:
        entry = self.index.get((market, metric))
        if entry is None:
            return []
        return [self.rules[i] for i in entry.candidates(prev, v)]


class History:
    """What the conditions of one batch of records ask about the past, each read once."""

    def __init__(self, store: Store, board: Board | None) -> None:
        self.store = store
        self.board = board
        self.reads: dict[tuple[Market, int, int], list[Point]] = {}
        self.before: dict[tuple[Market, int], Point | None] = {}
        self.table_reads = 0

    def clear(self) -> None:
        self.reads.clear()
        self.before.clear()

    async def prev(self, market: Market, metric: Metric, t: int) -> float | None:
        if self.board is not None:
            series = self.board.series.get(market)
            if series is not None:
                held = series[metric]
                i = bisect_left(held.ticks, t)  # the newest held value before t
                if i:
                    return held.values[i - 1]
        if (market, t) not in self.before:
            self.table_reads += 1
            self.before[(market, t)] = await self.store.point_before(market, t)
        point = self.before[(market, t)]
        return None if point is None else point.value(metric)

    async def window(self, market: Market, metric: Metric, lo: int, t: int) -> list[float]:
        """The market's values with lo ≤ time < t, oldest first."""
        board = self.board
        if board is not None and lo > board.seal_line():
            series = board.series.get(market)
            return series[metric].between(lo, t) if series is not None else []
        key = (market, lo, t)
        if key not in self.reads:
            self.table_reads += 1
            self.reads[key] = await self.store.query_points(market, lo - 1, t - 1)
        values = (p.value(metric) for p in self.reads[key])
        return [v for v in values if v is not None]


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
        self.fired = 0
        self.judged = 0
        self.loaded = False

    async def load(self) -> None:
        """The rule book: from its checkpoint and the changes since, else every rule from
        the table (the change index, read whole)."""
        started = time.monotonic()
        since = await asyncio.to_thread(self._restore)
        for rule in await self.rules.changes(since):
            self.book.apply(rule)
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
            saved = json.loads(self.saved.read_text())
            if time.time() - saved["at"] > CHECKPOINT_MAX_AGE:
                log.info("rule book checkpoint older than the tombstones kept: not used")
                return None
            for fields in saved["rules"]:
                rule = rule_from_fields(fields)
                self.book.apply(rule)
                self.book.progress[rule.id] = Progress(*fields["progress"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "rule book checkpoint %s not used (%s): reading every rule", self.saved, exc
            )
            self.book = RuleBook()
            return None
        return int(saved["version"]) - OVERLAP_MS

    def snapshot(self) -> dict[str, Any]:
        """What `save` writes: every live rule with its progress, and the newest change."""
        rules = [
            rule_fields(rule) | {"progress": list(self.book.progress[rule.id])}
            for rule in self.book.rules.values()
        ]
        return {"at": time.time(), "version": self.book.version, "rules": rules}

    def save(self, snapshot: dict[str, Any]) -> None:
        """Write the rule book's checkpoint whole, then rename (in a thread: it is large)."""
        if self.saved is None:
            return
        self.saved.parent.mkdir(parents=True, exist_ok=True)
        partial = self.saved.with_suffix(".partial")
        partial.write_text(json.dumps(snapshot, separators=(",", ":")))
        os.replace(partial, self.saved)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply rule changes as the API writes them, until stopped."""
        while not await sleep_unless(stop, FOLLOW_EVERY):
            try:
                if not self.loaded:
                    await self.load()
                    continue
                since = self.book.version - OVERLAP_MS
                changed = [r for r in await self.rules.changes(since) if self.book.apply(r)]
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
            if v is None or (point.market, metric) not in self.book.index:
                continue
            prev = await self.history.prev(point.market, metric, point.t)
            windows: dict[int, list[float]] = {}  # rules of one window share its values
            for rule in self.book.of(point.market, metric, prev, v):
                if rule.paused:
                    continue
                fired = await self._judge(rule, point, metric, prev, v, windows)
                if fired is not None:
                    fires.append(fired)
        if fires:
            slots = asyncio.Semaphore(FIRING)

            async def fire(rule: Rule, alert: UserAlert, after: Progress) -> None:
                async with slots:
                    await self._fire(rule, alert, after)

            await asyncio.gather(*(fire(*f) for f in fires))

    async def _judge(
        self,
        rule: Rule,
        point: Point,
        metric: Metric,
        prev: float | None,
        v: float,
        windows: dict[int, list[float]],
    ) -> tuple[Rule, UserAlert, Progress] | None:
        """The rule's step at this point; what to record when it fires."""
        condition = rule.condition
        window = window_of(condition)
        values: list[float] = []
        if window is not None:
            if window not in windows:
                lo = point.t - window
                windows[window] = await self.history.window(point.market, metric, lo, point.t)
            values = windows[window]
        progress = self.book.progress[rule.id]
        after, fired, judgement = advance(condition, rule.terms, progress, point.t, v, prev, values)
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

    async def _fire(self, rule: Rule, alert: UserAlert, after: Progress) -> None:
        """The alert, its deliveries and the rule's progress, in one transaction."""
        payload = rule_payload(alert.public(), rule.id, rule.name)
        try:
            await self.deliveries.record(alert, rule, after, list(rule.channels), payload)
        except AlreadyDone:
            log.info("user alert %s already recorded (record delivered again)", alert.id)
        else:
            self.fired += 1
            log.info(
                "user alert %s (%s): %s %s = %.10g, reference %s",
                alert.id,
                rule.user,
                f"{alert.exchange}:{alert.symbol}",
                alert.metric,
                alert.value,
                alert.reference,
            )
