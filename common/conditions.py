"""The four conditions of a user's rule and its repeat logic (CONTRACT), pure and exact.

Each condition is judged at a new point (t, v) from what that point's market knows: `prev`, the
newest point before t, and a `Window` of the values with t − window ≤ time < t: how many, their
sum, the oldest (the baseline), and the values themselves when at hand (an exact decision near
a tie needs them; the alerter keeps running sums and reads them only then). A judgement is
True, False or None (no verdict: no previous point, no baseline, too few points). Comparisons
are decided on the decimals the numbers were written as (`Fraction(repr(x))`), like the house
rule: a rise from 100 to 105 is 5 %, not 4.999….
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal, NamedTuple

from common.stats import ExactTotal

Direction = Literal["up", "down", "any"]
Side = Literal["above", "below"]
Repeat = Literal["once", "rearm"]
State = Literal["armed", "fired", "done"]


@dataclass(frozen=True, slots=True)
class CrossesAbove:
    level: float
    kind: Literal["crosses_above"] = "crosses_above"


@dataclass(frozen=True, slots=True)
class CrossesBelow:
    level: float
    kind: Literal["crosses_below"] = "crosses_below"


@dataclass(frozen=True, slots=True)
class Change:
    percent: float
    window: int
    direction: Direction = "any"
    kind: Literal["change"] = "change"


@dataclass(frozen=True, slots=True)
class AverageMultiple:
    multiple: float
    window: int
    min_points: int = 1
    direction: Side = "above"
    kind: Literal["average_multiple"] = "average_multiple"


Condition = CrossesAbove | CrossesBelow | Change | AverageMultiple


def exact(x: float) -> Fraction:
    return Fraction(repr(x))


def window_of(condition: Condition) -> int | None:
    """The seconds behind t the condition looks at (None: only the previous point)."""
    return None if isinstance(condition, CrossesAbove | CrossesBelow) else condition.window


class Window(NamedTuple):
    """The values with t − window ≤ time < t, as a windowed condition reads them."""

    n: int = 0
    total: float = 0.0  # their sum, correctly rounded
    base: float | None = None  # the oldest
    values: Sequence[float] | None = None  # every one, oldest first, when at hand

    @classmethod
    def of(cls, values: Sequence[float]) -> Window:
        return cls(len(values), math.fsum(values), values[0] if values else None, values)

    @classmethod
    def summed(cls, sums: ExactTotal, base: float | None) -> Window:
        """From exact running sums (`total` rounded once, as `math.fsum` rounds)."""
        return cls(sums.n, sums.s1 / (1 << sums.shift) if sums.n else 0.0, base)


NO_WINDOW = Window()


@dataclass(frozen=True, slots=True)
class Judgement:
    holds: bool | None  # None: no verdict
    reference: float | None  # the level, the baseline b, or mean(W)


def crosses_above(level: float, prev: float | None, v: float) -> bool | None:
    """prev < level ≤ v (floats order as the decimals they were written as)."""
    return None if prev is None else prev < level <= v


def crosses_below(level: float, prev: float | None, v: float) -> bool | None:
    return None if prev is None else prev > level >= v


def changed(percent: float, direction: Direction, base: float | None, v: float) -> bool | None:
    """(v − b)/b ≥ percent/100 (up), ≤ −percent/100 (down), either (any); b ≤ 0: no verdict."""
    if base is None or base <= 0:
        return None
    rise, bound = (v - base) * 100, percent * base  # compared with percent · b, b > 0
    if abs(abs(rise) - bound) <= 1e-9 * max(abs(rise), bound):  # near a tie: decide exactly
        exact_rise = (exact(v) - exact(base)) * 100
        exact_bound = exact(percent) * exact(base)
        up, down = exact_rise >= exact_bound, exact_rise <= -exact_bound
    else:
        up, down = rise >= bound, rise <= -bound
    return up if direction == "up" else down if direction == "down" else up or down


def near_tie(lhs: float, rhs: float) -> bool:
    return abs(lhs - rhs) <= 1e-9 * max(abs(lhs), abs(rhs))


def needs_values(condition: Condition, window: Window, v: float) -> bool:
    """An average multiple this close to its bound is decided on every value of the window,
    and this window does not have them at hand."""
    if not isinstance(condition, AverageMultiple) or window.values is not None:
        return False
    return window.n >= condition.min_points and near_tie(
        v * window.n, condition.multiple * window.total
    )


def average_multiple(
    multiple: float, min_points: int, side: Side, window: Window, v: float
) -> bool | None:
    """n ≥ min_points and v ≥ multiple × mean(W) (above) or ≤ (below): v·n vs multiple·ΣW."""
    n = window.n
    if n < max(1, min_points):
        return None
    lhs, rhs = v * n, multiple * window.total
    if near_tie(lhs, rhs):  # near a tie: decide exactly, on the decimals
        if window.values is None:
            raise ValueError("an average this close to its bound needs the window's values")
        left, right = exact(v) * n, exact(multiple) * sum(map(exact, window.values))
        return left >= right if side == "above" else left <= right
    return lhs >= rhs if side == "above" else lhs <= rhs


MARGIN = 1e-6  # relative; far wider than a tie's band (1e-9) and a float's rounding


def threshold(condition: Change | AverageMultiple) -> float:
    return condition.percent if isinstance(condition, Change) else condition.multiple


def may_hold(condition: Change | AverageMultiple, window: Window, v: float) -> tuple[float, float]:
    """The thresholds [lo, hi] (percent or multiple) for which a condition of this kind,
    window and direction may hold at v; every other one does not (or has no verdict). Wider
    than exact by `MARGIN`: what lies near the bound is judged exactly (`judge`)."""
    none = (math.inf, -math.inf)
    if isinstance(condition, Change):
        base = window.base
        if base is None or base <= 0:
            return none
        rise = (v - base) / base * 100
        bound = rise if condition.direction == "up" else -rise
        if condition.direction == "any":
            bound = abs(rise)
        return (0.0, bound + MARGIN * abs(bound)) if bound >= 0 else none
    if window.n == 0:
        return none
    if window.total <= 0:  # every value 0: left to `judge`
        return (0.0, math.inf)
    q = v * window.n / window.total  # v ≥ m · mean  ⟺  m ≤ q
    if condition.direction == "above":
        return 0.0, q + MARGIN * q
    return q - MARGIN * q, math.inf


def judge(condition: Condition, v: float, prev: float | None, window: Window) -> Judgement:
    if isinstance(condition, CrossesAbove):
        return Judgement(crosses_above(condition.level, prev, v), condition.level)
    if isinstance(condition, CrossesBelow):
        return Judgement(crosses_below(condition.level, prev, v), condition.level)
    if isinstance(condition, Change):
        base = window.base
        return Judgement(changed(condition.percent, condition.direction, base, v), base)
    mean = window.total / window.n if window.n else None
    return Judgement(
        average_multiple(condition.multiple, condition.min_points, condition.direction, window, v),
        mean,
    )


class Progress(NamedTuple):
    """What a rule remembers between points: the alerter keeps it and writes it on change.
    (A named tuple: one is made per rule per point, and `_replace` is cheap.)"""

    state: State = "armed"
    fired: int = 0
    last_fired: int | None = None
    judged: int | None = None  # the newest point judged: each point once


# A rule's progress until it fires or judges a point: one object for every such rule (the
# alerter holds 100,000 rules, most of which never fire and are seldom judged).
ARMED: Final = Progress()


def shared_progress(progress: Progress) -> Progress:
    """`ARMED` itself for a progress equal to it."""
    return ARMED if progress == ARMED else progress


@dataclass(frozen=True, slots=True)
class Terms:
    """The parts of a rule that decide when a condition that holds becomes an alert."""

    repeat: Repeat
    cooldown: int
    created: int
    expires: int | None = None


def step(terms: Terms, progress: Progress, t: int, holds: bool | None) -> tuple[Progress, bool]:
    """The rule's progress after its point at t, and whether it fires there.

    Points before the rule's creation, or judged already, change nothing. Past `expires`
    nothing fires. `once`: the first point where the condition holds fires, then `done`.
    `rearm`: fires where it holds, then waits for a point where it does not (no verdict is
    not such a point) and for `cooldown` seconds after its last firing."""
    if t < terms.created or (progress.judged is not None and t <= progress.judged):
        return progress, False
    if progress.state == "done" or holds is None:
        return progress._replace(judged=t), False
    if terms.expires is not None and t > terms.expires:
        return progress._replace(judged=t), False
    if not holds:
        state: State = "armed" if progress.state == "fired" else progress.state
        return progress._replace(state=state, judged=t), False
    cooling = progress.last_fired is not None and t - progress.last_fired < terms.cooldown
    if progress.state != "armed" or (terms.repeat == "rearm" and cooling):
        return progress._replace(judged=t), False
    state = "done" if terms.repeat == "once" else "fired"
    return Progress(state, progress.fired + 1, t, t), True


def advance(
    condition: Condition,
    terms: Terms,
    progress: Progress,
    t: int,
    v: float,
    prev: float | None,
    window: Window,
) -> tuple[Progress, bool, Judgement]:
    """A rule's step at a point it is shown. A crossing rule is shown only the points that
    cross its level (the alerter's index); two crossings the same way always have a point
    between them where the condition did not hold, so a fired crossing rule is armed again."""
    if progress.state == "fired" and isinstance(condition, CrossesAbove | CrossesBelow):
        progress = progress._replace(state="armed")
    judgement = judge(condition, v, prev, window)
    after, fired = step(terms, progress, t, judgement.holds)
    return after, fired, judgement
