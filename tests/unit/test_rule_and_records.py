"""The alert rule (hypothesis, CONTRACT's semantics) and stream record parsing."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerter.records import parse
from alerter.rule import RuleConfig, evaluate
from common.models import Market, Point
from tests.helpers.data import load

CONFIG = RuleConfig(multiplier=3.0, window=3600, min_points=30, cooldown=3600)
prices = st.lists(st.floats(1e-6, 1e7), min_size=30, max_size=120)


@given(prices, st.floats(0.0, 0.999))
def test_below_the_threshold_never_alerts(window: list[float], fraction: float) -> None:
    """A price under multiplier × mean never alerts, whatever the window."""
    average = math.fsum(window) / len(window)
    price = fraction * CONFIG.multiplier * average
    assume(not exact_reference(price, window, CONFIG.multiplier))
    assert not evaluate(10_000, price, window, None, CONFIG).alert


@given(prices, st.floats(1.0, 100.0))
def test_at_or_above_the_threshold_alerts(window: list[float], factor: float) -> None:
    """A price at or above multiplier × mean alerts when not cooling down."""
    average = math.fsum(window) / len(window)
    price = factor * CONFIG.multiplier * average
    assume(exact_reference(price, window, CONFIG.multiplier))
    verdict = evaluate(10_000, price, window, None, CONFIG)
    assert verdict.alert and verdict.points == len(window)
    assert verdict.average == pytest.approx(average)


@given(st.lists(st.floats(1, 2), max_size=29), st.floats(100, 1e6))
def test_fewer_than_min_points_never_alerts(window: list[float], price: float) -> None:
    """Below TRACKER_ALERT_MIN_POINTS there is no verdict, however large the spike."""
    assert not evaluate(10_000, price, window, None, CONFIG).alert


@given(st.integers(0, 10_000))
def test_cooldown_holds_until_it_has_passed(since: int) -> None:
    """An alert at time a silences the market while a > t - cooldown, and not after."""
    t = 20_000
    last = t - since
    verdict = evaluate(t, 100.0, [1.0] * 30, last, CONFIG)
    assert verdict.alert == (not last > t - CONFIG.cooldown)


def test_exactly_at_the_threshold_alerts() -> None:
    """p = multiplier × mean is an alert (≥, not >)."""
    assert evaluate(10_000, 3.0, [1.0] * 30, None, CONFIG).alert


def test_lambda_event_records_parse_to_changes() -> None:
    """The event AWS Lambda gives a stream-triggered function parses record by record."""
    records = load("streams", "lambda_event")["Records"]
    insert, modify, remove = (parse(r) for r in records)
    assert insert.point == Point(Market("bitfinex", "btcusd"), 1795420800, 40123.5, 1234.5)
    assert insert.created == 1795420800
    assert modify.point == Point(Market("bitfinex", "testbtc:testusd"), 1795420800, 1e-8, None)
    assert remove.point is None and remove.market == Market("kraken", "btcusd")


def test_malformed_record_is_rejected_at_the_edge() -> None:
    """An unknown event name fails validation instead of reaching the rule."""
    record = load("streams", "lambda_event")["Records"][0] | {"eventName": "UPSERT"}
    with pytest.raises(ValidationError):
        parse(record)


def exact_reference(price: float, window: list[float], multiplier: float) -> bool:
    """The rule at its threshold, naively: every number as the decimal it was written as."""
    return Fraction(repr(price)) * len(window) >= Fraction(repr(multiplier)) * sum(
        Fraction(repr(x)) for x in window
    )


def test_threshold_is_exact_where_floats_round() -> None:
    """Ten points of 0.7 and a price of 3*0.7 = 2.0999999999999996: below 3× (no alert, where
    float arithmetic said ratio 2.9999999999999996 and alerted); a price of 2.1 alerts."""
    window = [0.7] * 10
    config = RuleConfig(multiplier=3.0, window=3600, min_points=10, cooldown=3600)
    assert 3 * 0.7 == 2.0999999999999996
    assert not evaluate(10_000, 3 * 0.7, window, None, config).alert
    assert evaluate(10_000, 2.1, window, None, config).alert


@given(
    st.lists(st.decimals("0.00000001", "100000", places=8), min_size=1, max_size=60),
    st.sampled_from([1.5, 2.0, 3.0, 3.3]),
    st.integers(-3, 3),
)
def test_threshold_matches_the_exact_reference(
    window: list[Decimal], multiplier: float, nudge: int
) -> None:
    """At, just below and just above multiplier × mean (short decimals, as exchanges send
    them), the rule decides as exact arithmetic does."""
    prices = [float(x) for x in window]
    target = float(Decimal(repr(multiplier)) * sum(window) / len(window))
    price = target
    for _ in range(abs(nudge)):  # a few floats either side of the threshold
        price = math.nextafter(price, math.inf if nudge > 0 else 0.0)
    config = RuleConfig(multiplier, 3600, 1, 3600)
    assert evaluate(10_000, price, prices, None, config).alert == exact_reference(
        price, prices, multiplier
    )
