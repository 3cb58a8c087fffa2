"""The alert rule (CONTRACT): pure, over domain values.

For a new price point (market, t, p), W is the market's price points with t - window <= time < t.
Alert when len(W) >= min_points and p >= multiplier * mean(W), unless the market alerted at a
time > t - cooldown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


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
    if price < config.multiplier * average:
        return Verdict(False, average, n, "below the threshold")
    if last_alert is not None and last_alert > t - config.cooldown:
        return Verdict(False, average, n, f"cooling down since the alert at {last_alert}")
    return Verdict(True, average, n, "price at or above the threshold")
