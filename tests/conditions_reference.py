"""The rule semantics of CONTRACT's "Conditions" and "Repeat", written plainly over Fractions
of the decimals, point by point and rule by rule (no index, no fast path): the reference the
alerter's conditions and rule book are tested against."""

from __future__ import annotations

from fractions import Fraction
from typing import Any


def F(x: float) -> Fraction:
    return Fraction(repr(x))


def holds(condition: dict[str, Any], points: list[tuple[int, float]], i: int) -> bool | None:
    t, v = points[i]
    prev = points[i - 1][1] if i > 0 else None
    kind = condition["kind"]
    if kind == "crosses_above":
        return None if prev is None else F(prev) < F(condition["level"]) <= F(v)
    if kind == "crosses_below":
        return None if prev is None else F(prev) > F(condition["level"]) >= F(v)
    window = [F(x) for s, x in points[:i] if t - condition["window"] <= s < t]
    if kind == "change":
        if not window or window[0] <= 0:
            return None
        ratio = (F(v) - window[0]) / window[0]
        bound = F(condition["percent"]) / 100
        up, down = ratio >= bound, ratio <= -bound
        return {"up": up, "down": down, "any": up or down}[condition["direction"]]
    if len(window) < max(1, condition["min_points"]):
        return None
    lhs, rhs = F(v) * len(window), F(condition["multiple"]) * sum(window)
    return lhs >= rhs if condition["direction"] == "above" else lhs <= rhs


def fires(
    condition: dict[str, Any],
    repeat: str,
    cooldown: int,
    created: int,
    expires: int | None,
    points: list[tuple[int, float]],
) -> list[int]:
    """The ticks at which the rule fires."""
    fired: list[int] = []
    state = "armed"
    for i, (t, _) in enumerate(points):
        if t < created:
            continue
        verdict = holds(condition, points, i)
        if verdict is None or state == "done" or (expires is not None and t > expires):
            continue
        if not verdict:
            state = "armed"
            continue
        if state != "armed":
            continue
        if repeat == "rearm" and fired and t - fired[-1] < cooldown:
            continue
        fired.append(t)
        state = "done" if repeat == "once" else "fired"
    return fired
