"""What an alert says: the title and text every channel shows, and a webhook's JSON body."""

from __future__ import annotations

from typing import Any

from common.assets import ASSETS_EXCHANGE, PAIRS_EXCHANGE
from common.models import Alert, Market
from common.ticks import iso


def name(market: Market) -> str:
    """`bitfinex BTCUSD`; a pair across markets `BTC-USD across markets`; an asset `BTC (USD)`."""
    if market.exchange == PAIRS_EXCHANGE:
        return f"{market.symbol.upper()} across markets"
    if market.exchange == ASSETS_EXCHANGE:
        return f"{market.symbol.upper()} (USD)"
    return f"{market.exchange} {market.symbol.upper()}"


def message(alert: Alert) -> tuple[str, str]:
    """The house rule's title and body: market, price, hour average, ratio, time."""
    market = name(alert.market)
    title = f"{market}: price {alert.ratio:.2f}× its average"
    body = (
        f"{market} traded at {alert.price:.8g}, {alert.ratio:.2f}× its average of "
        f"{alert.average:.8g} over the previous {alert.points} points, at {iso(alert.t)}."
    )
    return title, body


def house_payload(alert: Alert) -> dict[str, Any]:
    title, text = message(alert)
    return {
        "title": title,
        "text": text,
        "webhook": {
            "type": "house_alert",
            "alert": {
                "id": alert.id,
                "exchange": alert.market.exchange,
                "symbol": alert.market.symbol,
                "time": iso(alert.t),
                "price": alert.price,
                "average": alert.average,
                "ratio": alert.ratio,
                "points": alert.points,
            },
        },
    }


def describe_condition(condition: dict[str, Any], metric: str) -> str:
    kind = condition["kind"]
    if kind == "crosses_above":
        return f"{metric} crossed above {condition['level']:.10g}"
    if kind == "crosses_below":
        return f"{metric} crossed below {condition['level']:.10g}"
    if kind == "change":
        way = {"up": "rose", "down": "fell", "any": "moved"}[condition["direction"]]
        return (
            f"{metric} {way} {condition['percent']:.10g} % or more within {condition['window']} s"
        )
    side = "at or above" if condition["direction"] == "above" else "at or below"
    return f"{metric} {side} {condition['multiple']:.10g}× its {condition['window']} s average"


def rule_payload(alert: dict[str, Any], rule_id: str, rule_name: str) -> dict[str, Any]:
    """A user's alert (`alert`: its public form, time as ISO text) as every channel gets it."""
    market = name(Market(alert["exchange"], alert["symbol"]))
    what = describe_condition(alert["condition"], alert["metric"])
    title = f"{rule_name}: {market}"
    text = f"{market}: {what} — {alert['metric']} {alert['value']:.10g} at {alert['time']}."
    return {
        "title": title,
        "text": text,
        "webhook": {"type": "alert", "alert": alert, "rule": {"id": rule_id, "name": rule_name}},
    }


def test_payload(channel_name: str, at: str) -> dict[str, Any]:
    title = "Test message from the crypto market tracker"
    text = f"This is a test of your channel {channel_name!r}, sent at {at}."
    return {
        "title": title,
        "text": text,
        "webhook": {"type": "test", "channel": channel_name, "time": at},
    }
