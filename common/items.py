"""Item ↔ domain conversion, the only place that knows attribute names and number encoding.

Numbers travel as DynamoDB `N` strings made with `repr(float)`, the shortest text that reads
back as the same float, so a stored point round-trips exactly (no Decimal context rounding).
"""

from __future__ import annotations

import math
from typing import Any

from common.models import Alert, Market, Metric, Point

Item = dict[str, Any]
METRIC_ATTRIBUTE: dict[Metric, str] = {"price": "p", "volume": "v"}


def num(value: float | int) -> dict[str, str]:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"DynamoDB cannot store {value!r}")
    return {"N": repr(value)}


def point_key(market: Market, t: int) -> Item:
    return {"m": {"S": market.key}, "t": {"N": str(t)}}


def point_item(point: Point, retention: int) -> Item:
    item = point_key(point.market, point.t) | {
        "p": num(point.price),
        "x": {"N": str(point.t + retention)},
    }
    if point.volume is not None:
        item["v"] = num(point.volume)
    return item


def point_from_item(item: Item) -> Point:
    volume = item.get("v")
    return Point(
        market=Market.from_key(item["m"]["S"]),
        t=int(item["t"]["N"]),
        price=float(item["p"]["N"]),
        volume=float(volume["N"]) if volume else None,
    )


def alert_item(alert: Alert) -> Item:
    item = {
        "m": {"S": alert.market.key},
        "t": {"N": str(alert.t)},
        "id": {"S": alert.id},
        "price": num(alert.price),
        "average": num(alert.average),
        "points": {"N": str(alert.points)},
        "g": {"S": "alert"},
    }
    return item


def alert_from_item(item: Item) -> Alert:
    return Alert(
        market=Market.from_key(item["m"]["S"]),
        t=int(item["t"]["N"]),
        price=float(item["price"]["N"]),
        average=float(item["average"]["N"]),
        points=int(item["points"]["N"]),
    )
