"""The users' rules the alerter holds, as columns, and the index that shows a point only the
rules it may change.

The alerter holds every live rule (100,000 and more), so a rule is not kept as the objects the
API works with (a `Rule`, its condition, terms and progress, each number an object of its own:
some 800 bytes and a dozen objects for the garbage collector to walk at every full
collection). A rule is a slot: its numbers packed in the book's one `bytearray` (`RECORD`),
the words it shares with other rules (its market, user, name, channels) as indexes into tables
that hold each once, its id in a list. A `Rule` is made from its slot only for the few rules a
point may change. The index is per (market, metric), one entry each: every rule's level (a
crossing's) or threshold (a windowed rule's) in one array, its slot in another, in segments
(crossings up, crossings down, then a group per kind, window and direction), each sorted.

So a rule costs about 350 bytes, most of them in a few large buffers, and nothing per rule is
tracked by the garbage collector but its id; an entry costs a few hundred bytes more, shared
by the market's rules.
"""

from __future__ import annotations

import functools
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar, cast

from common.conditions import (
    AverageMultiple,
    Change,
    Condition,
    CrossesAbove,
    CrossesBelow,
    Direction,
    Progress,
    Repeat,
    Side,
    State,
    Terms,
    Window,
    may_hold,
    shared_progress,
)
from common.models import METRICS, Market, Metric
from common.rules import Rule, shared_number

# A rule's numbers: metric, kind, direction, repeat, paused, state (a byte each); level,
# percent or multiple; window; min_points; cooldown; created (terms, whole seconds); expires;
# created (the rule's); changed; fired; last_fired; judged; then the indexes of its market,
# user, name and channels in the book's tables. 110 bytes.
RECORD: Final = struct.Struct("<6Bdqqqqqdqqqq4I")
STATE, FIRED, LAST_FIRED, JUDGED, CHANGED = 5, 14, 15, 16, 13  # fields of RECORD
NONE_INT: Final = -(2**63)  # an int field that is None
MOST: Final = 2**63 - 1  # beyond it, a count or a time never reached: the same
KINDS: Final = ("crosses_above", "crosses_below", "change", "average_multiple")
DIRECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "crosses_above": ("",),
    "crosses_below": ("",),
    "change": ("up", "down", "any"),
    "average_multiple": ("above", "below"),
}
REPEATS: Final[tuple[Repeat, ...]] = ("once", "rearm")
STATES: Final[tuple[State, ...]] = ("armed", "fired", "done")
ABOVE, BELOW = 0, 1  # the crossings' segments; a windowed group's is its kind's number

T = TypeVar("T", bound=Hashable)


def _int(value: int | None) -> int:
    return NONE_INT if value is None else min(value, MOST)


def _maybe(value: int) -> int | None:
    return None if value == NONE_INT else value


class Words(Generic[T]):
    """Values many rules share (a market, a user, a name, a set of channels), each held once
    with the number of rules naming it; a rule keeps its index. Indexes of values no rule
    names any more are used again."""

    def __init__(self) -> None:
        self.values: list[T | None] = []
        self.at: dict[T, int] = {}
        self.counts = array("I")
        self.free: list[int] = []

    def add(self, value: T) -> int:
        i = self.at.get(value)
        if i is None:
            if self.free:
                i = self.free.pop()
                self.values[i] = value
            else:
                i = len(self.values)
                self.values.append(value)
                self.counts.append(0)
            self.at[value] = i
        self.counts[i] += 1
        return i

    def drop(self, i: int) -> None:
        self.counts[i] -= 1
        if not self.counts[i]:
            del self.at[cast(T, self.values[i])]
            self.values[i] = None
            self.free.append(i)

    def __getitem__(self, i: int) -> T:
        return cast(T, self.values[i])

    def __len__(self) -> int:
        """Values named by some rule."""
        return len(self.at)


ID_WIDTH: Final = 32  # bytes an id takes in `Ids.packed` (the API's are 19)


class Ids:
    """Rule ids by slot, and the slot of an id, with no object per rule: each id packed in
    `ID_WIDTH` bytes (NUL-padded; all NUL: a free slot; a longer one is kept aside), and the
    slots in an open-addressing table over one array (linear probing; 0 empty, −1 a deleted
    entry), at most half full. A dict of 100,000 ids would hold 100,000 strings and as many
    ints, some 150 bytes a rule, scattered among what the load left behind."""

    def __init__(self) -> None:
        self.packed = bytearray()
        self.long: dict[int, str] = {}
        self.table = array("q", bytes(8 * 8))
        self.used = 0  # table entries not empty (live or deleted)
        self.live = 0

    def __len__(self) -> int:
        return self.live

    def __getitem__(self, slot: int) -> str | None:
        """The id in this slot (None: a free slot)."""
        if slot in self.long:
            return self.long[slot]
        raw = bytes(self.packed[slot * ID_WIDTH : (slot + 1) * ID_WIDTH]).rstrip(b"\0")
        return raw.decode() if raw else None

    def slots(self) -> Iterator[int]:
        """Every slot with an id, in order."""
        blank = bytes(ID_WIDTH)
        packed = self.packed
        for slot in range(len(packed) // ID_WIDTH):
            if packed[slot * ID_WIDTH : (slot + 1) * ID_WIDTH] != blank or slot in self.long:
                yield slot

    def _probe(self, rule_id: str) -> tuple[int, int]:
        """(where the id is in the table, or the first place it may go; its slot or −1)."""
        table = self.table
        mask = len(table) - 1
        i = hash(rule_id) & mask
        spare = -1
        while True:
            held = table[i]
            if held == 0:
                return (i if spare < 0 else spare), -1
            if held < 0:
                spare = i if spare < 0 else spare
            elif self[held - 1] == rule_id:
                return i, held - 1
            i = (i + 1) & mask

    def get(self, rule_id: str) -> int | None:
        if not self.live:
            return None
        slot = self._probe(rule_id)[1]
        return slot if slot >= 0 else None

    def put(self, rule_id: str, slot: int) -> None:
        """Give a free slot this id (not held before)."""
        encoded = rule_id.encode()
        if len(encoded) > ID_WIDTH or not encoded or b"\0" in encoded:
            self.long[slot] = rule_id
            encoded = b""
        end = (slot + 1) * ID_WIDTH
        if len(self.packed) < end:
            self.packed.extend(bytes(end - len(self.packed)))
        self.packed[slot * ID_WIDTH : end] = encoded.ljust(ID_WIDTH, b"\0")
        if 2 * (self.used + 1) > len(self.table):
            self._grow()
        i, _ = self._probe(rule_id)
        if self.table[i] == 0:
            self.used += 1
        self.table[i] = slot + 1
        self.live += 1

    def drop(self, slot: int) -> None:
        rule_id = self[slot]
        assert rule_id is not None
        i, found = self._probe(rule_id)
        assert found == slot
        self.table[i] = -1
        self.long.pop(slot, None)
        self.packed[slot * ID_WIDTH : (slot + 1) * ID_WIDTH] = bytes(ID_WIDTH)
        self.live -= 1

    def _grow(self) -> None:
        """A table four times the live ids (deleted entries dropped)."""
        size = 8
        while size < 4 * (self.live + 1):
            size *= 2
        self.table = array("q", bytes(8 * size))
        self.used = 0
        for slot in self.slots():
            rule_id = self[slot]
            assert rule_id is not None
            i, _ = self._probe(rule_id)
            self.table[i] = slot + 1
            self.used += 1

    def copy(self) -> Ids:
        """The ids by slot as now (no table: a copy is read by slot only)."""
        copy = Ids()
        copy.packed = bytearray(self.packed)
        copy.long = dict(self.long)
        return copy


@functools.lru_cache(maxsize=4096)
def sample(kind: int, window: int, direction: int) -> Change | AverageMultiple:
    """One condition standing for a windowed group (kind, window, direction): what `may_hold`
    reads of it (its threshold is each rule's own). Groups are told apart by equality; the
    cache only shares the object among entries."""
    way = DIRECTIONS[KINDS[kind]][direction]
    if KINDS[kind] == "change":
        return Change(0.0, window, cast(Direction, way))
    return AverageMultiple(0.0, window, 1, cast(Side, way))


def _numbers(rule: Rule, progress: Progress, words: tuple[int, int, int, int]) -> bytes:
    c = rule.condition
    window = min_points = 0
    if isinstance(c, CrossesAbove | CrossesBelow):
        param = c.level
    elif isinstance(c, Change):
        param, window = c.percent, c.window
    else:
        param, window, min_points = c.multiple, c.window, c.min_points
    t = rule.terms
    return RECORD.pack(
        METRICS.index(rule.metric),
        KINDS.index(c.kind),
        DIRECTIONS[c.kind].index(getattr(c, "direction", "")),
        REPEATS.index(t.repeat),
        rule.paused,
        STATES.index(progress.state),
        param,
        window,
        min(min_points, MOST),
        t.cooldown,
        t.created,
        _int(t.expires),
        rule.created,
        rule.changed,
        progress.fired,
        _int(progress.last_fired),
        _int(progress.judged),
        *words,
    )


def _condition(kind: str, direction: int, param: float, window: int, points: int) -> Condition:
    if kind == "crosses_above":
        return CrossesAbove(param)
    if kind == "crosses_below":
        return CrossesBelow(param)
    way = DIRECTIONS[kind][direction]
    if kind == "change":
        return Change(shared_number(param), shared_number(window), cast(Direction, way))
    return AverageMultiple(
        shared_number(param), shared_number(window), shared_number(points), cast(Side, way)
    )


def _progress(state: int, fired: int, last: int, judged: int) -> Progress:
    return shared_progress(Progress(STATES[state], fired, _maybe(last), _maybe(judged)))


@dataclass(slots=True)
class Tables:
    """The words rules share, by index."""

    markets: Words[Market]
    users: Words[str]
    names: Words[str]
    channels: Words[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Columns:
    """Rules as slots: their numbers (RECORD each), ids, and the words' tables. The book's
    own, or a copy of them (`RuleBook.copy`) that another thread may read."""

    numbers: bytes | bytearray
    ids: Ids
    markets: list[Market | None]
    users: list[str | None]
    names: list[str | None]
    channels: list[tuple[str, ...] | None]

    def rule(self, slot: int) -> Rule:
        """The rule in this slot, its progress as judged here."""
        (
            metric,
            kind,
            direction,
            repeat,
            paused,
            state,
            param,
            window,
            min_points,
            cooldown,
            created_s,
            expires,
            created,
            changed,
            fired,
            last_fired,
            judged,
            market,
            user,
            name,
            channels,
        ) = RECORD.unpack_from(self.numbers, slot * RECORD.size)
        return Rule(
            cast(str, self.ids[slot]),
            cast(str, self.users[user]),
            cast(str, self.names[name]),
            cast(Market, self.markets[market]),
            METRICS[metric],
            _condition(KINDS[kind], direction, param, window, min_points),
            Terms(REPEATS[repeat], cooldown, created_s, _maybe(expires)),
            cast(tuple[str, ...], self.channels[channels]),
            created,
            paused=bool(paused),
            changed=changed,
            progress=_progress(state, fired, last_fired, judged),
        )

    def slots(self) -> Iterator[int]:
        return self.ids.slots()


@dataclass(slots=True)
class MarketRules:
    """One (market, metric)'s rules: each rule's level (a crossing's) or threshold (a
    windowed rule's) in `levels`, its slot in `slots`, in segments: segment k holds
    `[bounds[k], bounds[k + 1])`, of the key `keys[k]` (ABOVE, BELOW, or a windowed group's
    `sample`), sorted by level; and the slots of windowed rules waiting to be rearmed.

    There is one per (market, metric) with rules, 20,000 and more, most with a handful of
    rules: a few arrays and tuples, whatever the rules' kinds."""

    levels: array[float]
    slots: array[int]
    bounds: tuple[int, ...] = (0,)
    keys: tuple[int | Change | AverageMultiple, ...] = ()
    rearming: dict[int, None] | None = None  # insertion-ordered set of slots
    widths: tuple[int, ...] = ()  # of the windowed groups, sorted, each once

    def __len__(self) -> int:
        return len(self.slots)

    def segment(self, key: int | Change | AverageMultiple) -> int | None:
        return next((k for k, held in enumerate(self.keys) if held == key), None)

    def add(self, key: int | Change | AverageMultiple, level: float, slot: int) -> None:
        k = self.segment(key)
        if k is None:  # a new segment, at the end
            k = len(self.keys)
            self.keys += (key,)
            self.bounds += (self.bounds[-1],)
            if not isinstance(key, int):
                self.widths = tuple(sorted({*self.widths, key.window}))
        i = bisect_right(self.levels, level, self.bounds[k], self.bounds[k + 1])
        self.levels.insert(i, level)
        self.slots.insert(i, slot)
        self.bounds = self.bounds[: k + 1] + tuple(b + 1 for b in self.bounds[k + 1 :])

    def remove(self, key: int | Change | AverageMultiple, level: float, slot: int) -> None:
        k = self.segment(key)
        if k is None:
            raise KeyError(slot)  # not indexed: never so for a rule held
        i = bisect_left(self.levels, level, self.bounds[k], self.bounds[k + 1])
        while self.slots[i] != slot:
            i += 1
        del self.levels[i]
        del self.slots[i]
        bounds = self.bounds[: k + 1] + tuple(b - 1 for b in self.bounds[k + 1 :])
        if bounds[k] == bounds[k + 1]:  # the segment is empty: gone
            self.keys = self.keys[:k] + self.keys[k + 1 :]
            bounds = bounds[:k] + bounds[k + 1 :]
            self.widths = tuple(sorted({g.window for g in self.keys if not isinstance(g, int)}))
        self.bounds = bounds
        self.rearm(slot, False)

    def rearm(self, slot: int, waiting: bool) -> None:
        """Note whether a windowed rule waits to be rearmed (fired) or not."""
        if waiting:
            if self.rearming is None:
                self.rearming = {}
            self.rearming[slot] = None
        elif self.rearming is not None:
            self.rearming.pop(slot, None)
            if not self.rearming:
                self.rearming = None

    def held(self) -> dict[int | Change | AverageMultiple, list[tuple[float, int]]]:
        """Each segment's (level, slot) pairs, in order (for checks)."""
        return {
            key: list(zip(self.levels[lo:hi], self.slots[lo:hi], strict=True))
            for key, lo, hi in zip(self.keys, self.bounds[:-1], self.bounds[1:], strict=True)
        }

    def candidates(self, prev: float | None, v: float, windows: dict[int, Window]) -> list[int]:
        """The slots of the rules this value can change: crossings of a level in (prev, v]
        upward or [v, prev) downward (no previous value: none), the windowed rules whose
        condition may hold (`may_hold`), and those waiting to be rearmed. The others would
        only note the point as judged, which a replay of it, with the same values, does not
        need."""
        found: list[int] = []
        levels, slots = self.levels, self.slots
        for key, lo, hi in zip(self.keys, self.bounds[:-1], self.bounds[1:], strict=True):
            if not isinstance(key, int):
                least, most = may_hold(key, windows[key.window], v)
                if least <= most:
                    a = bisect_left(levels, least, lo, hi)
                    found += slots[a : bisect_right(levels, most, a, hi)]
            elif prev is None:
                continue  # a crossing needs the value before
            elif key == ABOVE:
                a, b = bisect_right(levels, prev, lo, hi), bisect_right(levels, v, lo, hi)
                found += slots[a:b]
            else:
                a, b = bisect_left(levels, v, lo, hi), bisect_left(levels, prev, lo, hi)
                found += slots[a:b]
        if self.rearming:
            found += self.rearming
        return found


NONE: Final = MarketRules(array("d"), array("I"))  # the entry of a (market, metric) without rules


def _placed(fields: tuple[int | float, ...]) -> tuple[int | Change | AverageMultiple, float]:
    """Where a rule's RECORD puts it in its entry: its segment's key (ABOVE, BELOW, or its
    group's `sample`) and its level (a crossing's level, a windowed rule's threshold)."""
    kind, direction, param, window = int(fields[1]), int(fields[2]), fields[6], int(fields[7])
    key = kind if kind in (ABOVE, BELOW) else sample(kind, window, direction)
    return key, float(param)


class Rules(Mapping[str, Rule]):
    """The book's rules by id, each made from its slot when asked for."""

    def __init__(self, book: RuleBook) -> None:
        self.book = book

    def __getitem__(self, rule_id: str) -> Rule:
        slot = self.book.ids.get(rule_id)
        if slot is None:
            raise KeyError(rule_id)
        return self.book.columns().rule(slot)

    def __iter__(self) -> Iterator[str]:
        ids = self.book.ids
        return (cast(str, ids[slot]) for slot in ids.slots())

    def __len__(self) -> int:
        return len(self.book.ids)

    def __contains__(self, rule_id: object) -> bool:
        return isinstance(rule_id, str) and self.book.ids.get(rule_id) is not None


class RuleBook:
    """Every live rule, by id and by (market, metric); `version`: the newest change seen."""

    def __init__(self) -> None:
        self.numbers = bytearray()
        self.ids = Ids()
        self.free: list[int] = []  # slots of deleted rules, used again
        self.tables = Tables(Words(), Words(), Words(), Words())
        self.index: dict[tuple[Market, Metric], MarketRules] = {}
        self.version = -1

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rules(self) -> Rules:
        return Rules(self)

    def columns(self) -> Columns:
        t = self.tables
        return Columns(
            self.numbers,
            self.ids,
            t.markets.values,
            t.users.values,
            t.names.values,
            t.channels.values,
        )

    def copy(self) -> Columns:
        """The rules as now, for a reader in another thread (the lists copied: the rules
        change on the event loop meanwhile)."""
        live = self.columns()
        return Columns(
            bytes(live.numbers),
            live.ids.copy(),
            list(live.markets),
            list(live.users),
            list(live.names),
            list(live.channels),
        )

    def _fields(self, slot: int) -> tuple[int | float, ...]:
        return RECORD.unpack_from(self.numbers, slot * RECORD.size)

    def progress(self, rule_id: str) -> Progress:
        slot = self.ids.get(rule_id)
        if slot is None:
            raise KeyError(rule_id)
        f = self._fields(slot)
        return _progress(int(f[STATE]), int(f[FIRED]), int(f[LAST_FIRED]), int(f[JUDGED]))

    def apply(self, rule: Rule) -> bool:
        """Take a rule as the table has it now; False when it is not newer than held."""
        self.version = max(self.version, rule.changed)
        held = self.ids.get(rule.id)
        if held is not None and self._fields(held)[CHANGED] >= rule.changed:
            return False
        progress = rule.progress
        if held is not None:
            judged = self.columns().rule(held).progress
            self._remove(held)
            if progress._replace(judged=judged.judged) == judged:  # the same, judged further
                progress = judged
        if rule.deleted:
            return held is not None
        self._put(rule, progress)
        return True

    def _put(self, rule: Rule, progress: Progress) -> None:
        t = self.tables
        words = (
            t.markets.add(rule.market),
            t.users.add(rule.user),
            t.names.add(rule.name),
            t.channels.add(rule.channels),
        )
        record = _numbers(rule, progress, words)
        if self.free:
            slot = self.free.pop()
            self.numbers[slot * RECORD.size : (slot + 1) * RECORD.size] = record
        else:
            slot = len(self.numbers) // RECORD.size
            self.numbers += record
        self.ids.put(rule.id, slot)
        key, level = _placed(RECORD.unpack(record))
        entry = self.index.get((rule.market, rule.metric))
        if entry is None:
            entry = self.index[(rule.market, rule.metric)] = MarketRules(array("d"), array("I"))
        entry.add(key, level, slot)
        if not isinstance(key, int) and progress.state == "fired":
            entry.rearm(slot, True)

    def _remove(self, slot: int) -> None:
        f = self._fields(slot)
        market_i, user, name, channels = f[-4:]
        market = self.tables.markets[int(market_i)]
        at = (market, METRICS[int(f[0])])
        entry = self.index[at]
        entry.remove(*_placed(f), slot)
        if not entry:
            del self.index[at]
        t = self.tables
        t.markets.drop(int(market_i))
        t.users.drop(int(user))
        t.names.drop(int(name))
        t.channels.drop(int(channels))
        self.ids.drop(slot)
        self.free.append(slot)

    def advance(self, rule_id: str, progress: Progress) -> None:
        """The rule's progress after a point it judged."""
        slot = self.ids.get(rule_id)
        if slot is None:
            return
        fields = list(self._fields(slot))
        fields[STATE] = STATES.index(progress.state)
        fields[FIRED] = progress.fired
        fields[LAST_FIRED] = _int(progress.last_fired)
        fields[JUDGED] = _int(progress.judged)
        RECORD.pack_into(self.numbers, slot * RECORD.size, *fields)
        if KINDS[int(fields[1])] in ("change", "average_multiple"):
            market = self.tables.markets[int(fields[-4])]
            self.index[(market, METRICS[int(fields[0])])].rearm(slot, progress.state == "fired")

    def entry(self, market: Market, metric: Metric) -> MarketRules:
        return self.index.get((market, metric), NONE)

    def of(
        self,
        market: Market,
        metric: Metric,
        prev: float | None,
        v: float,
        windows: dict[int, Window],
    ) -> list[Rule]:
        """The rules of (market, metric) that this point may change (`windows`: at each of
        the entry's `widths`), each with its progress as judged here."""
        entry = self.index.get((market, metric))
        if entry is None:
            return []
        slots = entry.candidates(prev, v, windows)
        if not slots:
            return []
        columns = self.columns()
        return [columns.rule(s) for s in dict.fromkeys(slots)]
