"""Window statistics: pure functions plus a running accumulator, all float-cancellation aware.

Prices span nine orders of magnitude (JPY pairs near 1.6e7, meme coins near 1e-8), so a naive
sum of squares loses every digit of the variance. Sums are kept of values *shifted* by a
reference close to the mean, and re-centred exactly (two passes, `math.fsum`) often enough
that the drift of the mean away from the reference never matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    mean: float | None
    stdev: float | None  # sample (n - 1) standard deviation; None below two points


def summarize(values: Sequence[float]) -> Summary:
    """Count, mean and sample stdev by two passes (the reference the running sums must match)."""
    n = len(values)
    if n == 0:
        return Summary(0, None, None)
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(n, mean, None)
    # The correction term makes the second pass exact even when `mean` is slightly off.
    deviations = [v - mean for v in values]
    ss = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / n
    return Summary(n, mean, math.sqrt(max(ss, 0.0) / (n - 1)))


# Every add or remove rounds off up to ε times the largest sum of squares held since the last
# re-centring (the peak), so after up to 1,440 changes the spread is only good to about
# 3e-13 · peak. Below this ratio of spread to peak the sums are rebuilt exactly.
ILL_CONDITIONED = 1e-5


class RunningStats:
    """Count, mean and sample stdev of a multiset that values enter and leave one at a time."""

    __slots__ = ("_changes", "_n", "_peak", "_ref", "_s1", "_s2")

    def __init__(self) -> None:
        self._n = 0
        self._ref = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._peak = 0.0  # the largest _s2 since the last re-centring
        self._changes = 0

    def add(self, value: float) -> None:
        if self._n == 0:
            self._ref, self._s1, self._s2, self._peak = value, 0.0, 0.0, 0.0
        d = value - self._ref
        self._n += 1
        self._s1 += d
        self._s2 += d * d
        self._peak = max(self._peak, self._s2)
        self._changes += 1

    def remove(self, value: float) -> None:
        d = value - self._ref
        self._n -= 1
        self._s1 -= d
        self._s2 -= d * d
        self._changes += 1
        if self._n == 0:
            self._s1 = self._s2 = 0.0

    def needs_recentre(self) -> bool:
        """True once enough values have passed that rounding could have accumulated, or when
        the sums are ill-conditioned: values far from the reference but close to each other
        (a market that jumped, then went flat) make `s2 - s1²/n` cancel away its digits."""
        if self._changes >= max(64, self._n):
            return True
        spread = self._s2 - self._s1 * self._s1 / self._n if self._n else 0.0
        return self._peak > 0 and spread <= self._peak * ILL_CONDITIONED

    def recentre(self, values: Sequence[float]) -> None:
        """Rebuild the sums exactly from the values the accumulator holds now."""
        summary = summarize(values)
        self._n = summary.count
        self._ref = summary.mean if summary.mean is not None else 0.0
        deviations = [v - self._ref for v in values]
        self._s1 = math.fsum(deviations)
        self._s2 = self._peak = math.fsum(d * d for d in deviations)
        self._changes = 0

    def state(self) -> tuple[int, float, float, float, float, int]:
        """Every field, for a checkpoint; `restored` gives back an identical accumulator."""
        return (self._n, self._ref, self._s1, self._s2, self._peak, self._changes)

    @classmethod
    def restored(cls, state: tuple[int, float, float, float, float, int]) -> RunningStats:
        stats = cls()
        stats._n, stats._ref, stats._s1, stats._s2, stats._peak, stats._changes = state
        return stats

    def summary(self) -> Summary:
        n = self._n
        if n == 0:
            return Summary(0, None, None)
        mean = self._ref + self._s1 / n
        if n < 2:
            return Summary(n, mean, None)
        ss = self._s2 - self._s1 * self._s1 / n
        return Summary(n, mean, math.sqrt(max(ss, 0.0) / (n - 1)))


# Scores this close (relative) are one score: two markets with the same points must tie even
# when their running sums met the points in a different order and differ in the last bits.
TIE_TOLERANCE = 1e-9


def competition_rank(items: Iterable[tuple[K, float]]) -> list[tuple[K, float, int]]:
    """Sort by score, largest first, and rank with ties sharing a rank (1, 2, 2, 4)."""
    ordered = sorted(items, key=lambda kv: kv[1], reverse=True)
    ranked: list[tuple[K, float, int]] = []
    leader = math.nan  # the first score of the current tie group
    for position, (key, score) in enumerate(ordered, start=1):
        if ranked and math.isclose(score, leader, rel_tol=TIE_TOLERANCE, abs_tol=0.0):
            rank = ranked[-1][2]
        else:
            rank, leader = position, score
        ranked.append((key, score, rank))
    return ranked


def rank_score(summary: Summary, normalize: bool) -> float | None:
    """The figure a market is ranked by: stdev, or stdev / mean when normalising."""
    if summary.stdev is None or summary.mean is None:
        return None
    if not normalize:
        return summary.stdev
    return summary.stdev / summary.mean if summary.mean else None


Scorer = Callable[[Summary], float | None]
