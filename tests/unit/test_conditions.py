"""The four conditions and the repeat terms, property-tested against the plain Fraction
reference (tests/conditions_reference.py) on random sequences: levels hit exactly, gaps,
cooldown, rearm, expiry. The rules are driven as the alerter drives them: through the rule
book's index, which shows a crossing rule only the points that cross its level."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alerter.rule_book import ABOVE, BELOW, RECORD, RuleBook
from alerter.rule_windows import Spans
from common.conditions import (
    ARMED,
    NO_WINDOW,
    CrossesAbove,
    CrossesBelow,
    Progress,
    Terms,
    Window,
    advance,
    needs_values,
    threshold,
    window_of,
)
from common.models import Market
from common.rules import Rule, condition_dict, condition_of
from tests.conditions_reference import fires

MARKET = Market("bitfinex", "btcusd")
VALUES = [0.1, 0.7, 1.0, 1.5, 2.0, 2.0999999999999996, 2.1, 3.0, 95.0, 100.0, 105.0, 110.25]
values = st.one_of(st.sampled_from(VALUES), st.floats(0.05, 200, allow_nan=False))
gaps = st.sampled_from([60, 60, 60, 120, 300])
windows = st.sampled_from([60, 180, 600, 3600])
conditions = st.one_of(
    st.builds(
        lambda k, level: {"kind": k, "level": level},
        st.sampled_from(["crosses_above", "crosses_below"]),
        st.sampled_from(VALUES),
    ),
    st.builds(
        lambda p, w, d: {"kind": "change", "percent": p, "window": w, "direction": d},
        st.sampled_from([0.5, 5.0, 10.0, 50.0]),
        windows,
        st.sampled_from(["up", "down", "any"]),
    ),
    st.builds(
        lambda m, w, n, d: {
            "kind": "average_multiple",
            "multiple": m,
            "window": w,
            "min_points": n,
            "direction": d,
        },
        st.sampled_from([0.5, 1.05, 1.5, 3.0]),
        windows,
        st.integers(1, 4),
        st.sampled_from(["above", "below"]),
    ),
)


def drive(condition: dict[str, Any], terms: Terms, points: list[tuple[int, float]]) -> list[int]:
    """Fire times of one rule over the points, judged as the alerter judges: the rule book
    picks the candidates, windows are the alerter's running sums (`Spans`, reading the points
    given), and the values are read only for an exact decision near a tie."""
    return asyncio.run(judged(condition, terms, points))


async def judged(
    condition: dict[str, Any], terms: Terms, points: list[tuple[int, float]]
) -> list[int]:
    rule = Rule(
        "r", "u", "n", MARKET, "price", condition_of(condition, 86400), terms, (), 0.0, changed=1
    )
    book = RuleBook()
    book.apply(rule)

    async def read(market: Market, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(s, x) for s, x in points if lo <= s < hi]

    spans = Spans(read)
    fired: list[int] = []
    for i, (t, v) in enumerate(points):
        prev = points[i - 1][1] if i else None
        entry = book.index[(MARKET, "price")]
        windows = await spans.windows(MARKET, "price", t, v, entry.widths)
        for candidate in book.of(MARKET, "price", prev, v, windows):
            w = window_of(candidate.condition)
            window = NO_WINDOW if w is None else windows[w]
            if w is not None and needs_values(candidate.condition, window, v):
                window = Window.of([x for _, x in await read(MARKET, "price", t - w, t)])
            progress, did, _ = advance(
                candidate.condition,
                candidate.terms,
                candidate.progress,  # as the book holds it
                t,
                v,
                prev,
                window,
            )
            book.advance(candidate.id, progress)
            if did:
                fired.append(t)
    return fired


@settings(max_examples=400, deadline=None)
@given(
    condition=conditions,
    repeat=st.sampled_from(["once", "rearm"]),
    cooldown=st.sampled_from([0, 60, 300, 900]),
    created_at=st.integers(0, 6),
    expires_after=st.one_of(st.none(), st.integers(0, 20)),
    start=values,
    steps=st.lists(st.tuples(gaps, values), min_size=1, max_size=40),
)
def test_the_alerter_fires_where_the_reference_does(
    condition: dict[str, Any],
    repeat: str,
    cooldown: int,
    created_at: int,
    expires_after: int | None,
    start: float,
    steps: list[tuple[int, float]],
) -> None:
    points = [(1_800_000_000, start)]
    for gap, v in steps:
        points.append((points[-1][0] + gap, v))
    created = points[min(created_at, len(points) - 1)][0]
    expires = None if expires_after is None else created + 60 * expires_after
    terms = Terms(repeat, cooldown, created, expires)  # type: ignore[arg-type]
    assert drive(condition, terms, points) == fires(
        condition, repeat, cooldown, created, expires, points
    )


def test_a_level_reached_exactly_is_a_crossing_and_a_tie_is_decided_exactly() -> None:
    up = {"kind": "crosses_above", "level": 100.0}
    terms = Terms("rearm", 0, 0)
    t0 = 1_800_000_000
    assert drive(
        up,
        terms,
        [(t0, 99.0), (t0 + 60, 100.0), (t0 + 120, 100.0), (t0 + 180, 99.0), (t0 + 240, 101.0)],
    ) == [t0 + 60, t0 + 240]
    three = {
        "kind": "average_multiple",
        "multiple": 3.0,
        "window": 3600,
        "min_points": 1,
        "direction": "above",
    }
    assert drive(three, Terms("once", 0, 0), [(t0, 0.7), (t0 + 60, 2.0999999999999996)]) == []
    assert drive(three, Terms("once", 0, 0), [(t0, 0.7), (t0 + 60, 2.1)]) == [t0 + 60]
    five = {"kind": "change", "percent": 5.0, "window": 600, "direction": "up"}
    assert drive(five, Terms("once", 0, 0), [(t0, 100.0), (t0 + 60, 105.0)]) == [t0 + 60]


def test_created_while_past_the_level_fires_only_on_a_later_crossing() -> None:
    up = {"kind": "crosses_above", "level": 100.0}
    t0 = 1_800_000_000
    points = [(t0, 99.0), (t0 + 60, 120.0), (t0 + 120, 130.0), (t0 + 180, 90.0), (t0 + 240, 100.5)]
    assert drive(up, Terms("once", 0, t0 + 120), points) == [t0 + 240]


def test_conditions_round_trip_through_their_stored_form() -> None:
    for given_condition in (
        {"kind": "crosses_below", "level": 0.5},
        {"kind": "change", "percent": 5.0, "window": 3600, "direction": "down"},
        {
            "kind": "average_multiple",
            "multiple": 2.0,
            "window": 600,
            "min_points": 3,
            "direction": "below",
        },
    ):
        assert condition_dict(condition_of(given_condition, 86400)) == given_condition


def test_progress_is_judged_once_per_point() -> None:
    from common.conditions import step

    terms = Terms("rearm", 0, 0)
    after, fired = step(terms, Progress(), 100, True)
    assert fired and after.judged == 100
    again, fired_again = step(terms, after, 100, True)
    assert not fired_again and again == after


# Rules created, changed, fired and deleted in any order, on two markets, crossings above
# weighted so that one segment of an entry holds many.
book_ops = st.lists(
    st.tuples(
        st.integers(0, 39),  # the rule's id: reused, a change
        st.sampled_from([MARKET, Market("kraken", "ethusd")]),
        st.one_of(
            conditions,
            st.builds(lambda level: {"kind": "crosses_above", "level": level}, values),
        ),
        st.sampled_from(["put", "put", "put", "fire", "delete"]),
    ),
    min_size=40,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(ops=book_ops)
def test_the_index_holds_each_live_rule_once_sorted_by_level(
    ops: list[tuple[int, Market, dict[str, Any], str]],
) -> None:
    """After any sequence of changes, each (market, metric) entry holds exactly the live
    rules on it, each segment (crossings up, down, a group per kind, window and direction)
    sorted by level (threshold) with each rule beside its own, its widths those of its
    groups, the fired windowed rules waiting to be rearmed; no entry is left without rules,
    and slots of deleted rules are used again."""
    book = RuleBook()
    live: dict[str, Rule] = {}
    fired: set[str] = set()
    for changed, (n, market, given_condition, op) in enumerate(ops, start=1):
        rule_id = f"r{n}"
        if op == "fire":
            if rule_id in live:
                book.advance(rule_id, Progress("fired", 1, changed, changed))
                fired.add(rule_id)
            continue
        condition = condition_of(given_condition, 86400)
        terms = Terms("rearm", 0, 0)
        rule = Rule(rule_id, "u", "n", market, "price", condition, terms, (), 0.0, changed=changed)
        book.apply(rule if op == "put" else replace(rule, deleted=True))
        fired.discard(rule_id)
        if op == "put":
            live[rule_id] = rule
        else:
            live.pop(rule_id, None)

    want: dict[tuple[Market, str], dict[Any, list[tuple[float, str]]]] = {}
    for rule in live.values():
        c = rule.condition
        side = (
            "above"
            if isinstance(c, CrossesAbove)
            else "below"
            if isinstance(c, CrossesBelow)
            else (c.kind, c.window, c.direction)
        )
        level = c.level if isinstance(c, CrossesAbove | CrossesBelow) else threshold(c)
        want.setdefault((rule.market, rule.metric), {}).setdefault(side, []).append(
            (level, rule.id)
        )
    assert set(book.index) == set(want)
    # Each rule as given, but for its progress: the book's is as judged since.
    assert {i: replace(r, progress=ARMED) for i, r in book.rules.items()} == live
    assert {i for i, r in book.rules.items() if r.progress.state == "fired"} == fired
    slots = len(book.numbers) // RECORD.size
    assert slots <= len({f"r{n}" for n, *_ in ops})  # deleted rules' slots are used again
    for key, entry in book.index.items():
        got: dict[Any, list[tuple[float, str]]] = {}
        for segment, held in entry.held().items():
            side = (
                "above"
                if segment == ABOVE
                else "below"
                if segment == BELOW
                else (segment.kind, segment.window, segment.direction)  # type: ignore[union-attr]
            )
            assert side not in got  # one segment per side or group
            assert held, "a segment without rules is dropped"
            levels = [level for level, _ in held]
            assert levels == sorted(levels)
            got[side] = [(level, book.ids[slot]) for level, slot in held]  # type: ignore[misc]
        assert {side: sorted(held) for side, held in got.items()} == {
            side: sorted(held) for side, held in want[key].items()
        }
        grouped = {side[1] for side in want[key] if isinstance(side, tuple)}  # the windows
        assert entry.widths == tuple(sorted(grouped))
        waiting = {i for i in fired if (live[i].market, live[i].metric) == key}
        waiting = {i for i in waiting if window_of(live[i].condition) is not None}
        assert {book.ids[s] for s in entry.rearming or ()} == waiting
