"""Users and their API keys (tables `users` and `keys`).

A key's item is named by the id inside the key, so checking a key is one GetItem; the user's
keys are listed through the `by-user` index. `users` also holds each user's hourly count of
deliveries (`quota#<hour>`), counted with one conditional update per delivery.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from common import apikeys
from common.attrs import dump, load, value
from common.db import Store, translate
from common.errors import AlreadyDone, NotFound
from common.schema import KEYS, KEYS_BY_USER, USERS

USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PROFILE = "user"
QUOTA_TTL = 2 * 3600


@dataclass(frozen=True)
class KeyRecord:
    id: str
    user: str
    digest: str
    created: float
    last_used: float | None = None
    revoked: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "created": self.created,
            "last_used": self.last_used,
            "revoked": self.revoked,
        }


def _key_record(item: dict[str, Any]) -> KeyRecord:
    values = load(item)
    return KeyRecord(
        values["id"],
        values["u"],
        values["h"],
        float(values["created"]),
        values.get("used"),
        values.get("revoked"),
    )


class UsersStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self.users = store.settings.table(USERS)
        self.keys = store.settings.table(KEYS)

    async def add_user(self, name: str) -> None:
        """A new user (AlreadyDone if the name is taken; ValueError for a bad name)."""
        if not USER_RE.match(name):
            raise ValueError("a user name is 1-64 of a-z 0-9 . _ - (starting with a letter/digit)")
        async with translate(f"add user {name}", self.store.outage):
            await self.client.put_item(
                TableName=self.users,
                Item=dump({"u": name, "k": PROFILE, "created": time.time()}),
                ConditionExpression="attribute_not_exists(u)",
            )

    async def user_exists(self, name: str) -> bool:
        async with translate("GetItem user", self.store.outage):
            response = await self.client.get_item(
                TableName=self.users, Key=dump({"u": name, "k": PROFILE}), ConsistentRead=True
            )
        return "Item" in response

    async def list_users(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.users,
            "FilterExpression": "k = :k",
            "ExpressionAttributeValues": {":k": value(PROFILE)},
        }
        async with translate("Scan users", self.store.outage):
            while True:
                response = await self.client.scan(**request)
                found += [load(i) for i in response["Items"]]
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(({"user": f["u"], "created": f["created"]} for f in found), key=str)

    async def remove_user(self, name: str) -> None:
        """The user's own item and every key; the caller removes channels, rules, alerts."""
        for key in await self.list_keys(name):
            async with translate("DeleteItem key", self.store.outage):
                await self.client.delete_item(TableName=self.keys, Key=dump({"id": key.id}))
        async with translate(f"remove user {name}", self.store.outage):
            await self.client.delete_item(
                TableName=self.users,
                Key=dump({"u": name, "k": PROFILE}),
                ConditionExpression="attribute_exists(u)",
            )

    async def create_key(self, user: str) -> tuple[str, str]:
        """(key id, key) for an existing user (NotFound otherwise); the key is never stored."""
        if not await self.user_exists(user):
            raise NotFound(f"no user {user!r}")
        key_id, key = apikeys.new_key()
        item = {"id": key_id, "u": user, "h": apikeys.digest(key), "created": time.time()}
        async with translate("PutItem key", self.store.outage):
            await self.client.put_item(
                TableName=self.keys, Item=dump(item), ConditionExpression="attribute_not_exists(id)"
            )
        return key_id, key

    async def list_keys(self, user: str) -> list[KeyRecord]:
        request: dict[str, Any] = {
            "TableName": self.keys,
            "IndexName": KEYS_BY_USER,
            "KeyConditionExpression": "u = :u",
            "ExpressionAttributeValues": {":u": value(user)},
        }
        async with translate("Query keys", self.store.outage):
            response = await self.client.query(**request)
        return [_key_record(i) for i in response["Items"]]

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """The one read a key check costs."""
        async with translate("GetItem key", self.store.outage):
            response = await self.client.get_item(
                TableName=self.keys, Key=dump({"id": key_id}), ConsistentRead=True
            )
        item = response.get("Item")
        return _key_record(item) if item else None

    async def revoke_key(self, key_id: str) -> None:
        try:
            async with translate(f"revoke key {key_id}", self.store.outage):
                await self.client.update_item(
                    TableName=self.keys,
                    Key=dump({"id": key_id}),
                    UpdateExpression="SET revoked = :now",
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues={":now": value(time.time())},
                )
        except AlreadyDone:
            raise NotFound(f"no key {key_id!r}") from None

    async def touch_key(self, key_id: str, now: float) -> None:
        """Record when the key was last used (the service does it at most once a minute)."""
        async with translate("UpdateItem key", self.store.outage):
            await self.client.update_item(
                TableName=self.keys,
                Key=dump({"id": key_id}),
                UpdateExpression="SET used = :now",
                ExpressionAttributeValues={":now": value(now)},
            )

    async def count_deliveries(self, user: str, now: float, n: int, limit: int) -> int:
        """Count n deliveries in the user's hour, in one write; how many of them fit under
        `limit` (the first ones: those over it are counted too, and suppressed)."""
        hour = int(now // 3600)
        async with translate("count deliveries", self.store.outage):
            answer = await self.client.update_item(
                TableName=self.users,
                Key=dump({"u": user, "k": f"quota#{hour}"}),
                UpdateExpression="ADD n :n SET x = :x",
                ExpressionAttributeValues={":n": value(n), ":x": value(hour * 3600 + QUOTA_TTL)},
                ReturnValues="UPDATED_NEW",
            )
        counted = int(answer["Attributes"]["n"]["N"])
        return max(0, min(n, limit - (counted - n)))
