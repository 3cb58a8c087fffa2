"""Backfill's pure parts: candles → points against a naive reading of the definition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.models import Market
from fetcher.backfill import (
    Candle,
    parse_candles,
    parse_since,
    points_from_candles,
    refillable_ticks,
)
from tests.backfill_reference import naive

BTC = Market("bitfinex", "btcusd")


def test_naive_reads_candles_as_the_module_says() -> None:
    candles = [Candle(0, 1.0, 2.0), Candle(120, 3.0, 4.0)]
    got = [naive(candles, t) for t in (0, 60, 120, 180, 86_460, 86_520)]
    assert got == [None, (1.0, 2.0), (1.0, 2.0), (3.0, 6.0), (3.0, 4.0), (3.0, 4.0)]


candle_sets = st.lists(
    st.builds(
        Candle,
        st.integers(0, 3 * 1440).map(lambda m: m * 60),
        st.floats(1e-6, 1e7),
        st.floats(0, 1e4),
    ),
    max_size=60,
    unique_by=lambda c: c.start,
)


@given(candle_sets, st.lists(st.integers(0, 3 * 1440).map(lambda m: m * 60), max_size=30))
def test_points_equal_the_naive_reading(candles: list[Candle], ticks: list[int]) -> None:
    points = {p.t: p for p in points_from_candles(BTC, candles, ticks)}
    for t in ticks:
        expected = naive(candles, t)
        if expected is None:
            assert t not in points
        else:
            price, volume = expected
            assert points[t].price == price
            assert points[t].volume == pytest.approx(volume, rel=1e-9, abs=1e-6)


@given(st.integers(1, 600), st.integers(0, 10**9), st.integers(0, 20_000))
def test_refillable_ticks_are_the_minute_ticks_in_the_range(
    interval: int, start: int, span: int
) -> None:
    got = refillable_ticks(start, start + span, interval)
    expected = [t for t in range(start + 1, start + span + 1) if t % interval == 0 and t % 60 == 0]
    assert got == expected


def test_parse_since_and_candles() -> None:
    assert [parse_since(s) for s in ("24h", "90m", "2d", "3600", "45s")] == [
        86400,
        5400,
        172800,
        3600,
        45,
    ]
    for bad in ("", "0h", "-1h", "1w", "yesterday"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_since(bad)
    rows = [
        [1_700_000_040_000, 1.0, 2.0, 2.1, 0.9, 5.0],
        [1_700_000_100_000, None, None, None, None, None],
        [1_700_000_160_000, 1.0, 0, 1.0, 1.0, 1.0],
        "garbage",
        [1_700_000_220_000, 1.0, 3.0],
    ]
    assert parse_candles(rows) == [Candle(1_700_000_040, 2.0, 5.0)]
    assert parse_candles({"error": "x"}) == []
