"""The rules' running windows (alerter/rule_windows.py) against the plain list they stand for:
at every point, the count, the exact sum and the oldest value of t − w ≤ time < t, for points
in order, with gaps longer than a chunk or a window, and for the irregular ones (a replay, an
overwrite, a deletion) that drop a market's spans."""

from __future__ import annotations

import asyncio
import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from alerter import rule_windows
from alerter.rule_windows import Spans
from common.models import Market

MARKET = Market("bitfinex", "btcusd")
T0 = 1_800_000_000
values = st.one_of(st.sampled_from([0.1, 0.7, 1e-9, 3.0, 1e6]), st.floats(1e-6, 1e6))
# (gap, value, how): in order, a replay of an older tick, an overwrite of the newest, a deletion.
steps = st.lists(
    st.tuples(
        st.sampled_from([60, 60, 60, 120, 900, 1800, 4000, 90000]),
        values,
        st.sampled_from(["next"] * 8 + ["replay", "overwrite", "delete"]),
    ),
    min_size=1,
    max_size=60,
)
widths = st.lists(st.sampled_from([60, 600, 3600, 4 * 3600, 86400]), min_size=1, max_size=3)


async def replay(plan: list[tuple[int, float, str]], chosen: list[int]) -> int:
    table: dict[int, float] = {}
    reads = 0

    async def read(market: Market, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        nonlocal reads
        reads += 1
        return [(t, table[t]) for t in sorted(table) if lo <= t < hi]

    spans = Spans(read)
    t = T0
    checked = 0
    for gap, v, how in plan:
        if how == "delete" and table:
            gone = max(table)
            del table[gone]
            spans.removed(MARKET, gone)
            continue
        if how == "replay" and table:
            at = sorted(table)[len(table) // 2]
        elif how == "overwrite" and table:
            at = max(table)
        else:
            t = max(table, default=t) + gap
            at = t
        table[at] = v  # written first, then its stream record judged
        got = await spans.windows(MARKET, "price", at, v, sorted(set(chosen)))
        for width in set(chosen):
            inside = [table[s] for s in sorted(table) if at - width <= s < at]
            window = got[width]
            assert window.n == len(inside)
            assert window.total == math.fsum(inside)
            assert Fraction(window.total) == Fraction(math.fsum(inside))
            assert window.base == (inside[0] if inside else None)
            checked += 1
    assert checked or not plan
    return reads


@settings(max_examples=300, deadline=None)
@given(plan=steps, chosen=widths)
def test_running_windows_equal_the_values_they_stand_for(
    plan: list[tuple[int, float, str]], chosen: list[int]
) -> None:
    asyncio.run(replay(plan, chosen))


def test_a_long_window_is_read_whole_once_then_a_chunk_at_a_time() -> None:
    """A day of one-minute points under a 24 h window: one read to build it, then one per
    chunk of its oldest values (not one per point)."""
    plan = [(60, 1.0 + (i % 7), "next") for i in range(3 * 1440)]
    reads = asyncio.run(replay(plan, [86400]))
    chunks = (2 * 86400) // rule_windows.CHUNK  # the oldest values leave after the first day
    assert reads <= 1 + chunks + 1
    assert reads >= chunks


def test_a_window_shorter_than_a_chunk_is_held_whole_and_read_once() -> None:
    """A ten-minute window of one-minute points for three hours, from an empty table: every
    value it needs has come through it, so it is read once, when built."""
    plan = [(60, 2.0 + (i % 5), "next") for i in range(3 * 60)]
    assert asyncio.run(replay(plan, [600])) == 1
