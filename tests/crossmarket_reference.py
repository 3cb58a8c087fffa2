"""The contract's cross-market formulas in exact arithmetic (`Fraction`), written from its text
and not from the implementation: the reference that unit and end-to-end tests compare with."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from common.crossmarket import Observation

PERCENT = 10.0


def ref_median(prices: list[float], volumes: list[float]) -> Fraction:
    """The lowest price at which the volumes of the prices at or below it reach half of the
    total volume."""
    total = sum(Fraction(v) for v in volumes)
    for candidate in sorted(set(prices)):
        below = sum(Fraction(v) for p, v in zip(prices, volumes, strict=True) if p <= candidate)
        if below >= total / 2:
            return Fraction(candidate)
    raise AssertionError("unreachable")


@dataclass
class Ref:
    status: str
    deviation: Fraction | None


def reference(observations: list[Observation], percent: float = PERCENT) -> list[Ref]:
    """Each observation's status and deviation at one tick."""
    out: list[Ref] = []
    candidates = [
        i
        for i, o in enumerate(observations)
        if o.volume is not None and o.volume > 0 and not o.stale
    ]
    enter = 1 + Fraction(percent) / 100
    leave = 1 + Fraction(percent) / 200
    for i, o in enumerate(observations):
        if o.volume is None or o.volume <= 0:
            out.append(Ref("no_volume", None))
        elif o.stale:
            out.append(Ref("stale", None))
        elif len(candidates) < 3:
            out.append(Ref("used", None))
        else:
            others = [j for j in candidates if j != i]
            ref = ref_median(
                [observations[j].price for j in others],
                [observations[j].volume or 0.0 for j in others],
            )
            ratio = Fraction(o.price) / ref
            # |log10(ratio)| >= 1; |ln(ratio)| > ln(enter); back only at |ln| <= ln(leave)
            gross = ratio >= 10 or ratio <= Fraction(1, 10)
            beyond_enter = ratio > enter or 1 / ratio > enter
            beyond_leave = ratio > leave or 1 / ratio > leave
            if gross:
                status = "gross"
            elif o.was_outlier:
                status = "outlier" if beyond_leave else "used"
            else:
                status = "outlier" if beyond_enter else "used"
            out.append(Ref(status, ratio - 1))
    return out


@dataclass
class RefFigures:
    statuses: dict[str, str]
    price: Fraction | None  # volume-weighted mean of the used prices
    volume: Fraction  # base volume of the used and outlier markets


@dataclass
class Memory:
    price: float
    volume: float | None
    since: int
    outlier: bool


@dataclass
class ReferenceRun:
    """Tick after tick: staleness (unchanged since) and hysteresis (outlier before)."""

    stale_after: int
    percent: float = PERCENT
    memory: dict[str, Memory] = field(default_factory=dict)

    def tick(self, t: int, values: dict[str, tuple[float, float | None]]) -> RefFigures:
        names = sorted(values)
        obs = []
        for name in names:
            price, vol = values[name]
            prev = self.memory.get(name)
            same = prev is not None and (prev.price, prev.volume) == (price, vol)
            since = prev.since if prev is not None and same else t
            was = prev.outlier if prev else False
            obs.append(Observation(name, "p", price, vol, t - since >= self.stale_after, was))
            self.memory[name] = Memory(price, vol, since, was)
        refs = reference(obs, self.percent)
        statuses = {o.exchange: r.status for o, r in zip(obs, refs, strict=True)}
        for name, status in statuses.items():
            self.memory[name].outlier = status in ("outlier", "gross")
        used = [o for o in obs if statuses[o.exchange] == "used"]
        counted = [o for o in obs if statuses[o.exchange] in ("used", "outlier")]
        weights = sum((Fraction(o.volume or 0) for o in used), Fraction(0))
        mean: Fraction | None = None
        if used:
            total = sum((Fraction(o.volume or 0) * Fraction(o.price) for o in used), Fraction(0))
            mean = total / weights
        volume = sum((Fraction(o.volume or 0) for o in counted), Fraction(0))
        return RefFigures(statuses, mean, volume)


def close(value: float | None, exact: Fraction | None, rel: int = 10**12) -> bool:
    """A float equal to an exact value but for rounding."""
    if value is None or exact is None:
        return value is None and exact is None
    return abs(Fraction(value) - exact) <= abs(exact) / rel + Fraction(1, 10**300)
