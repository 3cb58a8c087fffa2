"""A user's rule: its definition (market, metric, condition, repeat terms, channels) and its
progress, as the API shows it and the alerter judges it. Pure."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from sys import intern
from typing import Any, Final, TypeVar, cast

from common.conditions import (
    ARMED,
    AverageMultiple,
    Change,
    Condition,
    CrossesAbove,
    CrossesBelow,
    Direction,
    Progress,
    Side,
    Terms,
)
from common.models import METRICS, Market, Metric

CONDITION_KINDS: Final = ("crosses_above", "crosses_below", "change", "average_multiple")
CONDITION_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "crosses_above": (("level",), ()),
    "crosses_below": (("level",), ()),
    "change": (("percent", "window"), ("direction",)),
    "average_multiple": (("multiple", "window"), ("min_points", "direction")),
}
NO_EXPIRY = None
N = TypeVar("N", int, float)


@functools.lru_cache(maxsize=4096, typed=True)
def shared_number(number: N) -> N:
    """One object for a number many rules give (a window, a percent, a cooldown): the alerter
    holds every rule, and each number read from a table is an object of its own."""
    return number


@functools.lru_cache(maxsize=1 << 17)
def market_of(key: str) -> Market:
    """One Market object per market, however many rules name it."""
    return Market.from_key(key)


class RuleError(ValueError):
    """A field of a rule that cannot be used; `field` is its dotted name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(where: str, given: Any, positive: bool = True) -> float:
    if isinstance(given, bool) or not isinstance(given, int | float) or not math.isfinite(given):
        raise RuleError(where, "must be a number")
    if positive and given <= 0:
        raise RuleError(where, "must be greater than 0")
    return float(given)


def _seconds(where: str, given: Any, most: int) -> int:
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= most:
        raise RuleError(where, f"must be whole seconds from 1 to {most}")
    return given


def condition_of(given: Any, max_window: int) -> Condition:
    """The condition a request gives, or RuleError naming the field."""
    if not isinstance(given, dict):
        raise RuleError("condition", "must be an object with a kind")
    kind = given.get("kind")
    if kind not in CONDITION_FIELDS:
        raise RuleError("condition.kind", f"unknown kind; one of {', '.join(CONDITION_KINDS)}")
    required, optional = CONDITION_FIELDS[kind]
    for name in given:
        if name != "kind" and name not in required and name not in optional:
            raise RuleError(f"condition.{name}", f"not a field of a {kind} condition")
    for name in required:
        if name not in given:
            raise RuleError(f"condition.{name}", "field required")
    if kind == "crosses_above":
        return CrossesAbove(_number("condition.level", given["level"]))
    if kind == "crosses_below":
        return CrossesBelow(_number("condition.level", given["level"]))
    window = _seconds("condition.window", given["window"], max_window)
    if kind == "change":
        direction = given.get("direction", "any")
        if direction not in ("up", "down", "any"):
            raise RuleError("condition.direction", "one of up, down, any")
        return Change(
            shared_number(_number("condition.percent", given["percent"])),
            shared_number(window),
            cast(Direction, intern(direction)),
        )
    side = given.get("direction", "above")
    if side not in ("above", "below"):
        raise RuleError("condition.direction", "one of above, below")
    min_points = given.get("min_points", 1)
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1:
        raise RuleError("condition.min_points", "must be a whole number ≥ 1")
    return AverageMultiple(
        shared_number(_number("condition.multiple", given["multiple"])),
        shared_number(window),
        shared_number(min_points),
        cast(Side, intern(side)),
    )


def condition_dict(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, CrossesAbove | CrossesBelow):
        return {"kind": condition.kind, "level": condition.level}
    if isinstance(condition, Change):
        return {
            "kind": condition.kind,
            "percent": condition.percent,
            "window": condition.window,
            "direction": condition.direction,
        }
    return {
        "kind": condition.kind,
        "multiple": condition.multiple,
        "window": condition.window,
        "min_points": condition.min_points,
        "direction": condition.direction,
    }


def metric_of(given: Any) -> Metric:
    if given not in METRICS:
        raise RuleError("metric", f"one of {', '.join(METRICS)}")
    metric: Metric = given
    return metric


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    user: str
    name: str
    market: Market
    metric: Metric
    condition: Condition
    terms: Terms
    channels: tuple[str, ...]
    created: float
    paused: bool = False
    changed: int = 0  # milliseconds: the version the alerter follows
    deleted: bool = False
    progress: Progress = ARMED

    def state(self, now: float) -> str:
        if self.paused:
            return "paused"
        if self.progress.state == "done":
            return "done"
        if self.terms.expires is not None and now > self.terms.expires:
            return "expired"
        return self.progress.state

    def public(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "exchange": self.market.exchange,
            "symbol": self.market.symbol,
            "metric": self.metric,
            "condition": condition_dict(self.condition),
            "repeat": self.terms.repeat,
            "cooldown": self.terms.cooldown,
            "expires": self.terms.expires,
            "channels": list(self.channels),
            "paused": self.paused,
            "state": self.state(now),
            "fired": self.progress.fired,
            "last_fired": self.progress.last_fired,
            "created": self.created,
        }


def condition_from_dict(given: dict[str, Any]) -> Condition:
    """A stored condition (already checked when it was created)."""
    return condition_of(given, 2**31)
