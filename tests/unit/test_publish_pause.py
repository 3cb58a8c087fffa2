"""The alerter's pace of publishing its board: never faster than asked, and never more than a
fifth of its time on boards however large they grow."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from alerter.worker import PAUSE_PER_COST, publish_pause

SECONDS = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


@given(every=SECONDS.filter(lambda s: s > 0), cost=SECONDS)
def test_publishing_takes_at_most_a_fifth_of_the_time(every: float, cost: float) -> None:
    pause = publish_pause(every, cost)
    assert pause >= every
    # The share of time spent building boards, exactly: cost / (cost + pause) ≤ 1/5.
    share = Fraction(cost) / (Fraction(cost) + Fraction(pause))
    assert share <= Fraction(1, 1 + int(PAUSE_PER_COST))
    if cost * PAUSE_PER_COST <= every:
        assert pause == every  # a small board is published as often as asked
