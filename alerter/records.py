"""Stream records → domain changes, parsed at the edge.

Accepts both shapes a record comes in: `GetRecords` (boto: ApproximateCreationDateTime is a
datetime) and the event AWS Lambda hands a stream-triggered function (a number), so the same
handler serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from common.items import point_from_item
from common.models import Market, Point


class StreamData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Keys: dict[str, dict[str, str]]
    NewImage: dict[str, dict[str, Any]] | None = None
    SequenceNumber: str
    ApproximateCreationDateTime: datetime | float | None = None


class StreamRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    dynamodb: StreamData


@dataclass(frozen=True, slots=True)
class Change:
    """A point written (`point` set) or removed (`point` None) at (market, t)."""

    market: Market
    t: int
    point: Point | None
    sequence: str
    created: float | None  # when DynamoDB wrote it, if the record says


def parse(raw: dict[str, Any]) -> Change:
    record = StreamRecord.model_validate(raw)
    data = record.dynamodb
    market = Market.from_key(data.Keys["m"]["S"])
    t = int(data.Keys["t"]["N"])
    point = None
    if record.eventName != "REMOVE" and data.NewImage is not None:
        point = point_from_item(data.NewImage)
    created = data.ApproximateCreationDateTime
    if isinstance(created, datetime):
        created = created.timestamp()
    return Change(market, t, point, data.SequenceNumber, created)
