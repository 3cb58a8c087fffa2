"""The ranking set the service's tests read: ten markets, 90 minutes of one-minute points."""

from __future__ import annotations

import random
import time

from common.models import Market, Point
from common.ticks import tick_floor

WINDOW = 3600
NOW = tick_floor(time.time(), 60)
MARKETS = [
    Market("bitfinex", s)
    for s in (
        "btcusd",
        "ethusd",
        "btcjpy",
        "testbtc:testusd",
        "twin1usd",
        "twin2usd",
        "flatusd",
        "oneusd",
    )
] + [Market("kraken", "btcusd"), Market("kraken", "ethusd")]


def seed() -> list[Point]:
    """90 minutes of points: some older than the window, JPY-scale prices, an exact tie, a
    market with one point, one with no variation."""
    rng = random.Random(42)
    points: list[Point] = []
    twin = [100 + rng.gauss(0, 1) for _ in range(90)]
    for market in MARKETS:
        level = {"btcjpy": 16_000_000.0, "btcusd": 40_000.0}.get(market.symbol, 2_500.0)
        for i in range(90):
            t = NOW - (89 - i) * 60
            if market.symbol == "oneusd" and i != 89:
                continue
            if market.symbol.startswith("twin"):
                price = twin[i]
            elif market.symbol == "flatusd":
                price = 5.0
            else:
                price = level * (1 + rng.gauss(0, 0.002))
            points.append(Point(market, t, price, rng.uniform(1, 1e4)))
    return points
