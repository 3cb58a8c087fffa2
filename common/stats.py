"""Window statistics: pure functions plus exact running sums.

Prices span nine orders of magnitude (JPY pairs near 1.6e7, meme coins near 1e-8), so a float
sum of squares loses every digit of the variance. The reference (`summarize`) takes two passes
with `math.fsum`; the running sums (`ExactSums`, `ExactTotal`) are exact integers, so they never
drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Self, TypeVar

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


class ExactTotal:
    """Count and sum of a multiset of floats, kept exactly (`ExactSums` adds the squares; a
    user's windowed rule needs only these two, and the alerter holds one per window).

    A finite float is an integer over a power of two (`as_integer_ratio`), so the sum is an
    integer over one common power of two, 2**shift, the largest any value has needed.
    """

    __slots__ = ("n", "s1", "shift")

    def __init__(self) -> None:
        self.n = 0
        self.s1 = 0  # Σ x · 2**shift
        self.shift = 0

    @classmethod
    def of(cls, values: Iterable[float]) -> Self:
        sums = cls()
        for value in values:
            sums.add(value)
        return sums

    def _grow(self, bits: int) -> None:
        self.s1 <<= bits

    def _scaled(self, value: float) -> int:
        numerator, denominator = value.as_integer_ratio()
        bits = denominator.bit_length() - 1
        if bits > self.shift:
            self._grow(bits - self.shift)
            self.shift = bits
        return numerator << (self.shift - bits)

    def add(self, value: float) -> int:
        """Count the value in; returns it as scaled (what `ExactSums` squares)."""
        x = self._scaled(value)  # first: it may rescale the sum
        self.n += 1
        self.s1 += x
        return x

    def remove(self, value: float) -> int:
        x = self._scaled(value)
        self.n -= 1
        self.s1 -= x
        if self.n == 0:
            self.s1 = self.shift = 0  # a window that empties starts afresh
        return x


class ExactSums(ExactTotal):
    """Count, sum and sum of squares of a multiset of floats, kept exactly: values enter and
    leave in any order, for ever, and the figures never drift (so they never need the values
    back to be re-centred, which is what lets a window forget its old points).

    The sums are integers over one common power of two (`ExactTotal`). Prices span nine
    orders of magnitude (JPY pairs near 1.6e7, meme coins near 1e-8): the integers just grow a
    few words, and `summary` rounds once, at the end.
    """

    __slots__ = ("s2",)

    def __init__(self) -> None:
        super().__init__()
        self.s2 = 0  # Σ x² · 4**shift

    def _grow(self, bits: int) -> None:
        super()._grow(bits)
        self.s2 <<= 2 * bits

    def add(self, value: float) -> int:
        x = super().add(value)
        self.s2 += x * x
        return x

    def remove(self, value: float) -> int:
        x = super().remove(value)
        self.s2 = self.s2 - x * x if self.n else 0  # a window that empties starts afresh
        return x

    def state(self) -> tuple[int, int, int, int]:
        """Every field, for a checkpoint; `restored` gives back identical sums."""
        return (self.n, self.s1, self.s2, self.shift)

    @classmethod
    def restored(cls, state: Sequence[int]) -> ExactSums:
        sums = cls()
        sums.n, sums.s1, sums.s2, sums.shift = (int(x) for x in state)
        return sums

    def summary(self) -> Summary:
        """Mean and sample stdev, each rounded once (int / int divides exactly, then rounds)."""
        n = self.n
        if n <= 0:
            return Summary(0, None, None)
        mean = self.s1 / (n << self.shift)
        if n < 2:
            return Summary(n, mean, None)
        spread = n * self.s2 - self.s1 * self.s1  # n² · variance · (n−1)/n, exactly; ≥ 0
        return Summary(n, mean, math.sqrt(spread / ((n * (n - 1)) << (2 * self.shift))))


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
