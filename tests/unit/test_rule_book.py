"""The rule book's columns: any rule the API can make comes back from its slot as it went in,
with the progress it was judged to, whatever rules came and went before it; and the book keeps
no object per rule that the garbage collector walks but its id."""

from __future__ import annotations

import gc
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from alerter.rule_book import ID_WIDTH, MOST, Ids, RuleBook
from common.conditions import AverageMultiple, Change, CrossesAbove, CrossesBelow, Progress, Terms
from common.models import Market
from common.rules import Rule

floats = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False)
seconds = st.integers(1, 86_400)
times = st.integers(0, 2**40)
maybe_times = st.one_of(st.none(), times)
conditions = st.one_of(
    st.builds(CrossesAbove, positive),
    st.builds(CrossesBelow, positive),
    st.builds(Change, positive, seconds, st.sampled_from(["up", "down", "any"])),
    st.builds(
        AverageMultiple,
        positive,
        seconds,
        st.integers(1, 10**6),
        st.sampled_from(["above", "below"]),
    ),
)
rules = st.builds(
    Rule,
    id=st.text(min_size=1, max_size=30),
    user=st.text(max_size=20),
    name=st.text(max_size=60),
    market=st.builds(Market, st.sampled_from(["bitfinex", "all", "asset"]), st.text(max_size=9)),
    metric=st.sampled_from(["price", "volume"]),
    condition=conditions,
    terms=st.builds(
        Terms, st.sampled_from(["once", "rearm"]), st.integers(0, 31_536_000), times, maybe_times
    ),
    channels=st.lists(st.text(max_size=12), max_size=10).map(tuple),
    created=st.floats(min_value=0, max_value=4e9),
    paused=st.booleans(),
    changed=times,
)
progresses = st.builds(
    Progress,
    st.sampled_from(["armed", "fired", "done"]),
    st.integers(0, 10**6),
    maybe_times,
    maybe_times,
)


@given(before=st.lists(rules, max_size=6), rule=rules, progress=progresses)
def test_a_slot_gives_back_the_rule_with_its_progress(
    before: list[Rule], rule: Rule, progress: Progress
) -> None:
    """Rules put and deleted before it (their slots and words used again), then the rule."""
    book = RuleBook()
    for other in before:
        if other.id != rule.id:
            book.apply(other)
            book.apply(replace(other, changed=other.changed + 1, deleted=True))
    book.apply(replace(rule, progress=progress))
    assert book.rules[rule.id] == replace(rule, progress=progress)
    assert len(book) == 1
    t = book.tables
    assert [len(t.markets), len(t.users), len(t.names), len(t.channels)] == [1, 1, 1, 1]


def test_a_count_beyond_any_record_is_one_never_reached() -> None:
    """min_points past 2**63 − 1 (the API bounds it only below): kept as that bound, which no
    window holds either."""
    rule = Rule(
        "r",
        "u",
        "n",
        Market("kraken", "btcusd"),
        "price",
        AverageMultiple(2.0, 3600, 10**30, "above"),
        Terms("once", 0, 0),
        (),
        0.0,
    )
    book = RuleBook()
    book.apply(rule)
    back = book.rules["r"]
    assert isinstance(back.condition, AverageMultiple)
    assert back.condition.min_points == MOST


@given(rule=rules, progress=progresses)
def test_advance_changes_the_progress_alone(rule: Rule, progress: Progress) -> None:
    book = RuleBook()
    book.apply(rule)
    book.advance(rule.id, progress)
    assert book.rules[rule.id] == replace(rule, progress=progress)
    assert book.progress(rule.id) == progress


def test_the_book_holds_nothing_per_rule_the_collector_walks() -> None:
    """10,000 rules on 100 markets: what the collector tracks grows with the markets (their
    index entries), not with the rules."""
    book = RuleBook()
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        market = Market("bitfinex", f"t{i % 100}usd")
        condition = CrossesAbove(float(i)) if i % 2 else Change(5.0, 3600, "any")
        rule = Rule(
            f"rl_{i:016x}", "u", "n", market, "price", condition, Terms("rearm", 0, 0), ("c",), 0.0
        )
        book.apply(rule)
    gc.collect()  # tuples holding only untracked objects are untracked here
    tracked = len(gc.get_objects()) - before
    assert len(book) == 10_000
    assert tracked < 1_000, tracked  # its 10,000 ids are strings: not tracked


id_texts = st.one_of(
    st.sampled_from([f"rl_{i:016x}" for i in range(12)]),  # the API's
    st.text(min_size=1, max_size=3),
    st.text(min_size=ID_WIDTH, max_size=ID_WIDTH + 8),  # kept aside
    st.sampled_from(["", "a\0b"]),  # nothing to pack, a NUL: kept aside
)


@given(ops=st.lists(st.tuples(st.booleans(), id_texts), max_size=200))
def test_ids_find_each_slot_as_a_dict_would(ops: list[tuple[bool, str]]) -> None:
    """Ids put in and dropped in any order (slots used again, the table grown and left with
    deleted entries): each id gives its slot, each slot its id, as a dict of them would."""
    ids = Ids()
    model: dict[str, int] = {}
    free: list[int] = []
    for drop, rule_id in ops:
        if rule_id in model and drop:
            slot = model.pop(rule_id)
            ids.drop(slot)
            free.append(slot)
        elif rule_id not in model:
            slot = free.pop() if free else len(model) + len(free)
            ids.put(rule_id, slot)
            model[rule_id] = slot
        assert len(ids) == len(model)
    for rule_id, slot in model.items():
        assert ids.get(rule_id) == slot
        assert ids[slot] == rule_id
    assert {ids[slot] for slot in ids.slots()} == set(model)
    for _, rule_id in ops:
        assert ids.get(rule_id) == model.get(rule_id)
    copy = ids.copy()
    assert all(copy[slot] == rule_id for rule_id, slot in model.items())
