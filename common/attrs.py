"""Plain values ↔ DynamoDB attribute values, for the small items of users' alerts.

The points and boards have hand-made items (common/items.py), tuned for thousands per tick;
the users' items are few and varied, so they go through boto3's type (de)serializer, with
floats as the shortest decimal that reads back as the same float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

Item = dict[str, Any]
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def _plain_in(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _plain_in(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain_in(v) for v in value]
    return value


def _plain_out(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, dict):
        return {k: _plain_out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_out(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return bytes(value.value)
    return value


def dump(values: dict[str, Any]) -> Item:
    """An item of plain values (None fields left out)."""
    return {k: _serializer.serialize(_plain_in(v)) for k, v in values.items() if v is not None}


def load(item: Item) -> dict[str, Any]:
    return {k: _plain_out(_deserializer.deserialize(v)) for k, v in item.items()}


def value(v: Any) -> Any:
    """One attribute value (for expression values)."""
    return _serializer.serialize(_plain_in(v))
