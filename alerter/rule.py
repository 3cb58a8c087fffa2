"""The alert rule (CONTRACT): pure, over domain values.

For a new price point (market, t, p), W is the market's price points with t - window <= time < t.
Alert when len(W) >= min_points and p >= multiplier * mean(W), unless the market alerted at a
time > t - cooldown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class RuleConfig:
    multiplier: float
    window: int
    min_points: int
    cooldown: int


@dataclass(frozen=True, slots=True)
class Verdict:
    alert: bool
    average: float | None
    points: int
    reason: str


def evaluate(
    t: int, price: float, window: Sequence[float], last_alert: int | None, config: RuleConfig
) -> Verdict:
    """Whether the price at tick t alerts, given its window's prices and the last alert time."""
    n = len(window)
    if n < config.min_points:
        return Verdict(False, None, n, f"only {n} of {config.min_points} points in the window")
    average = math.fsum(window) / n
    if not reaches(price, window, config.multiplier):
        return Verdict(False, average, n, "below the threshold")
    if last_alert is not None and last_alert > t - config.cooldown:
        return Verdict(False, average, n, f"cooling down since the alert at {last_alert}")
    return Verdict(True, average, n, "price at or above the threshold")


def _exact(x: float) -> Fraction:
    """The decimal a float was written as (`repr` is the shortest text that reads back as it):
    exchanges send prices as short decimals, and the setting is typed as one."""
    return Fraction(repr(x))


def reaches(price: float, window: Sequence[float], multiplier: float) -> bool:
    """price ≥ multiplier × mean(window), decided exactly: price·n ≥ multiplier·Σwindow over
    the decimals the numbers were written as. Floats decide whenever the two sides are
    further apart than their rounding could be (a relative 1e-9, against errors below 1e-15);
    only a near tie pays for exact arithmetic. Ten prices of 0.7 and a price of
    3 × 0.7 = 2.0999999999999996 do not alert; a price of 2.1 does."""
    n = len(window)
    lhs, rhs = price * n, multiplier * math.fsum(window)
    if abs(lhs - rhs) > 1e-9 * max(abs(lhs), abs(rhs)):
        return lhs > rhs
    return _exact(price) * n >= _exact(multiplier) * sum(map(_exact, window))
