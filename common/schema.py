"""Tables, keys and `tracker init-db`: create what is missing, enable TTL and Streams.

    <prefix>-points  m (S, "exchange:symbol") + t (N, tick)  p, v, x (TTL)   Stream NEW_IMAGE
    <prefix>-alerts  m (S) + t (N)  id, price, average, ratio, points, g (the house rule's)
                     GSI by-time: g + t (every alert, newest first)
    <prefix>-meta    k (S) + n (N)  board parts, heartbeats, shard leases and checkpoints

Users' alerts (common/users_store.py, channels_store.py, rules_store.py, deliveries_store.py):
    <prefix>-users        u (S) + k (S)  k = "user": the user; k = "quota#<hour>": deliveries
                                         counted against TRACKER_MAX_NOTIFICATIONS (TTL)
    <prefix>-keys         id (S)         key digest, owner, created, last used, revoked
                          GSI by-user: u + created
    <prefix>-channels     u (S) + id (S) kind, public fields, sealed secrets, disabled
    <prefix>-rules        u (S) + id (S) definition and progress (state, fired, last fired)
                          GSI changes: g + c (every rule by when it last changed; the
                          alerter follows it; a deleted rule stays as a tombstone, TTL)
    <prefix>-user-alerts  u (S) + s (S)  s = "<t, 12 digits>:<rule id>": newest first (TTL)
    <prefix>-deliveries   a (S) + c (S)  one per (alert, channel): the outbox (TTL)
                          GSI due: q + n (sparse: deliveries still to attempt, by when)
                          GSI by-user: u + w (a user's deliveries, newest first)

docs/data-model.md maps every access pattern to the one request that serves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from common.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

POINTS, ALERTS, META = "points", "alerts", "meta"
USERS, KEYS, CHANNELS, RULES = "users", "keys", "channels", "rules"
USER_ALERTS, DELIVERIES = "user-alerts", "deliveries"
KEYS_BY_USER, RULE_CHANGES, DELIVERIES_DUE, DELIVERIES_BY_USER = (
    "by-user",
    "changes",
    "due",
    "by-user",
)
TTL_ATTRIBUTE = "x"
STREAM_VIEW: Final = "NEW_IMAGE"  # deploy/aws/tracker.yaml says the same (a test checks)
ALERTS_BY_TIME = "by-time"


@dataclass(frozen=True)
class TableSpec:
    name: str
    keys: tuple[tuple[str, str]] | tuple[tuple[str, str], tuple[str, str]]  # hash [, range]
    indexes: tuple[tuple[str, str, str], ...] = ()  # (index name, hash attribute, range attribute)
    stream: bool = False
    ttl: bool = False
    extra_attributes: dict[str, str] = field(default_factory=dict)

    def create_request(self, table: str) -> dict[str, Any]:
        attributes = dict(self.keys) | self.extra_attributes
        request: dict[str, Any] = {
            "TableName": table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": name, "KeyType": kind}
                for (name, _), kind in zip(self.keys, ("HASH", "RANGE"), strict=False)
            ],
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": kind} for name, kind in attributes.items()
            ],
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": hash_key, "KeyType": "HASH"},
                        {"AttributeName": range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, hash_key, range_key in self.indexes
            ]
        if self.stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": STREAM_VIEW}
        return request


TABLES = (
    TableSpec(POINTS, (("m", "S"), ("t", "N")), stream=True, ttl=True),
    TableSpec(
        ALERTS,
        (("m", "S"), ("t", "N")),
        indexes=((ALERTS_BY_TIME, "g", "t"),),
        extra_attributes={"g": "S"},
    ),
    TableSpec(META, (("k", "S"), ("n", "N"))),
    TableSpec(USERS, (("u", "S"), ("k", "S")), ttl=True),
    TableSpec(
        KEYS,
        (("id", "S"),),
        indexes=((KEYS_BY_USER, "u", "created"),),
        extra_attributes={"u": "S", "created": "N"},
    ),
    TableSpec(CHANNELS, (("u", "S"), ("id", "S"))),
    TableSpec(
        RULES,
        (("u", "S"), ("id", "S")),
        indexes=((RULE_CHANGES, "g", "c"),),
        ttl=True,
        extra_attributes={"g": "S", "c": "N"},
    ),
    TableSpec(USER_ALERTS, (("u", "S"), ("s", "S")), ttl=True),
    TableSpec(
        DELIVERIES,
        (("a", "S"), ("c", "S")),
        indexes=((DELIVERIES_DUE, "q", "n"), (DELIVERIES_BY_USER, "u", "w")),
        ttl=True,
        extra_attributes={"q": "S", "n": "N", "u": "S", "w": "N"},
    ),
)


async def _describe(client: DynamoDBClient, table: str) -> dict[str, Any] | None:
    try:
        response = await client.describe_table(TableName=table)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return dict(response["Table"])


async def _wait_active(client: DynamoDBClient, table: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while True:
        description = await _describe(client, table)
        if description and description["TableStatus"] == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} not ACTIVE after {limit:.0f} s")
        await asyncio.sleep(0.2)


async def init_db(client: DynamoDBClient, settings: Settings) -> list[str]:
    """Create missing tables and turn on TTL/Streams; returns what was changed (empty: no-op)."""
    changes: list[str] = []
    for spec in TABLES:
        table = settings.table(spec.name)
        description = await _describe(client, table)
        if description is None:
            await client.create_table(**spec.create_request(table))
            changes.append(f"created table {table}")
        await _wait_active(client, table)
        if spec.stream and description is not None:
            stream = description.get("StreamSpecification") or {}
            if not stream.get("StreamEnabled"):
                await client.update_table(
                    TableName=table,
                    StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
                )
                changes.append(f"enabled the stream of {table}")
                await _wait_active(client, table)
        if spec.ttl:
            ttl = await client.describe_time_to_live(TableName=table)
            status = ttl["TimeToLiveDescription"].get("TimeToLiveStatus")
            if status not in ("ENABLED", "ENABLING"):
                await client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )
                changes.append(f"enabled TTL on {table}.{TTL_ATTRIBUTE}")
    for change in changes:
        log.info("init-db: %s", change)
    if not changes:
        log.info("init-db: every table is present with TTL and Streams on; nothing to do")
    return changes
