"""Points made for a test."""

from __future__ import annotations

from common.models import Market, Point


def steady(market: Market, end: int, n: int, price: float = 100.0) -> list[Point]:
    """`n` points up to `end` (one a second), alternating `price` and `price` + 0.5."""
    return [Point(market, end - (n - i), price + (i % 2) * 0.5, 10.0) for i in range(n)]
