"""Window math against naive references (`statistics`), property-tested with hypothesis."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.models import Market, Point
from common.stats import ExactSums, ExactTotal, competition_rank, summarize
from common.window import Board, Series

# Prices at every scale a real feed shows: JPY pairs near 1.6e7, meme coins near 1e-8.
scale = st.sampled_from([1e-8, 1e-3, 1.0, 4e4, 1.6e7])
noise = st.lists(st.floats(-0.05, 0.05), min_size=2, max_size=200)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12 * max(abs(a), abs(b), 1e-300))


@given(scale, noise)
def test_summarize_matches_statistics(level: float, moves: list[float]) -> None:
    """Two-pass mean and sample stdev equal statistics.mean/stdev at every price scale."""
    values = [level * (1 + m) for m in moves]
    s = summarize(values)
    assert s.count == len(values)
    assert s.mean is not None and s.stdev is not None
    assert close(s.mean, statistics.fmean(values))
    assert close(s.stdev, statistics.stdev(values))


@given(scale, noise, st.integers(0, 10_000))
def test_exact_sums_track_a_sliding_window(level: float, moves: list[float], seed: int) -> None:
    """Values entering and leaving, for ever, keep the figures equal to `statistics` (which is
    exact over the floats), at every price scale: the sums are exact, so nothing drifts."""
    values = [level * (1 + m) for m in moves]
    sums = ExactSums()
    window: list[float] = []
    for i, v in enumerate(values * 3):
        sums.add(v)
        window.append(v)
        if (i + seed) % 3 == 0 and len(window) > 2:
            sums.remove(window.pop(0))
    s = sums.summary()
    assert s.count == len(window)
    assert s.mean is not None and close(s.mean, statistics.fmean(window))
    if len(window) >= 2:
        assert s.stdev is not None
        assert math.isclose(s.stdev, statistics.stdev(window), rel_tol=1e-12, abs_tol=0.0)


@given(
    st.lists(st.floats(0, 1e12, allow_subnormal=False) | st.sampled_from([0.0, 1e-8]), max_size=40)
)
def test_exact_sums_equal_a_rebuild_whatever_left(values: list[float]) -> None:
    """Adding everything then removing a prefix gives the sums of the rest, bit for bit."""
    sums = ExactSums.of(values)
    for v in values[: len(values) // 2]:
        sums.remove(v)
    rest = ExactSums.of(values[len(values) // 2 :])
    assert sums.summary() == rest.summary()


@given(
    st.lists(st.floats(-1e12, 1e12, allow_subnormal=False), max_size=40),
    st.integers(0, 40),
)
def test_exact_total_is_the_exact_sum_of_what_is_in(values: list[float], leave: int) -> None:
    """The count and sum a rule's window keeps equal `Fraction`'s sum of the values still in,
    whatever scales entered first (a finer one rescales what is summed already)."""
    total = ExactTotal.of(values)
    for v in values[:leave]:
        total.remove(v)
    rest = values[leave:]
    assert total.n == len(rest)
    assert Fraction(total.s1, 1 << total.shift) == sum(map(Fraction, rest), Fraction(0))


def test_jpy_scale_prices_keep_their_variance() -> None:
    """A naive sum of squares loses a 1-yen stdev at 1.6e7; exact sums do not."""
    values = [16_000_000.0 + (i % 3) for i in range(1440)]
    assert ExactSums.of(values).summary().stdev == pytest.approx(
        statistics.stdev(values), rel=1e-12
    )


def test_fewer_than_two_points_have_no_stdev() -> None:
    """One point has a mean but no sample stdev; none has neither."""
    assert summarize([]).mean is None
    assert summarize([5.0]).stdev is None and summarize([5.0]).mean == 5.0


@given(st.lists(st.integers(0, 5), max_size=30))
def test_competition_rank_shares_ranks_on_ties(scores: list[int]) -> None:
    """Rank = 1 + number of strictly larger scores (1, 2, 2, 4), largest first."""
    ranked = competition_rank([(i, float(s)) for i, s in enumerate(scores)])
    assert [r[1] for r in ranked] == sorted(map(float, scores), reverse=True)
    for _key, score, rank in ranked:
        assert rank == 1 + sum(1 for s in scores if s > score)


def test_scores_differing_only_in_the_last_bits_tie() -> None:
    """Float noise is not a difference; a real one (1e-6 relative) is."""
    noisy = math.nextafter(0.25, 1.0)
    ranked = competition_rank([("a", 0.25), ("b", noisy), ("c", 0.25 * (1 - 1e-6)), ("d", 1.0)])
    assert [(k, r) for k, _, r in ranked] == [("d", 1), ("b", 2), ("a", 2), ("c", 4)]


@settings(max_examples=200)
@given(scale, st.lists(st.tuples(st.integers(0, 300), st.floats(-0.05, 0.05)), max_size=300))
def test_board_window_equals_reference(level: float, writes: list[tuple[int, float]]) -> None:
    """After any order of writes and rewrites, at any price scale, each market's figures equal
    a recomputation over exactly its points with window_end - rank_window < t <= window_end."""
    board = Board(rank_window=600)
    stored: dict[tuple[Market, int], float] = {}
    for i, (minute, move) in enumerate([(0, 0.0), *writes]):
        market = Market("x", f"m{i % 3}")
        t, price = minute * 60, level * (1 + move)
        board.apply(Point(market, t, price, None))
        stored[(market, t)] = price
    end = max(t for (_, t) in stored)
    for row in board.rows():
        values = [p for (m, t), p in sorted(stored.items()) if m == row.market and end - 600 < t]
        s = row.stats["price"]
        assert s.count == len(values)
        assert s.mean is not None and close(s.mean, statistics.fmean(values))
        if len(values) >= 2:
            assert s.stdev is not None and math.isclose(
                s.stdev, statistics.stdev(values), rel_tol=1e-12, abs_tol=0.0
            )
    assert board.window_end == end


def test_series_between_is_half_open() -> None:
    """between(lo, hi) returns values with lo <= t < hi (the alert window's shape)."""
    series = Series()
    for t in range(0, 600, 60):
        series.upsert(t, float(t))
    assert series.between(60, 240) == [60.0, 120.0, 180.0]


def test_a_jump_leaving_the_window_does_not_cancel_a_flat_market_s_variance() -> None:
    """A stablecoin at 1.05 for an hour, then flat at 1.0 with 1e-9 moves: once the jump has
    left the window, its stdev still equals a recomputation (the sums are rebuilt exactly)."""
    series = Series()
    flat = [1.0 + 1e-9 * (i % 7) for i in range(1440)]
    for t in range(60):
        series.upsert(t, 1.05)
    for t, value in enumerate(flat, start=60):
        series.upsert(t, value)
        series.trim_through(t - 1440)
        series.summary()  # published every tick: the sums are used all along
    s = series.summary()
    assert s.count == 1440 and s.stdev is not None
    assert s.stdev == pytest.approx(statistics.stdev(flat), rel=1e-12)
