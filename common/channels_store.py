"""A user's channels (table `channels`, `u` + `id`): the fields and the signing secret are
sealed together (common/sealed.py) under the item's own name; the rest is plain."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from common.attrs import dump, load, value
from common.channels import Channel
from common.db import Store, translate
from common.errors import AlreadyDone, NotFound
from common.schema import CHANNELS
from common.sealed import Sealer


def context(user: str, channel_id: str) -> str:
    return f"channel:{user}:{channel_id}"


def new_channel_id() -> str:
    return "ch_" + uuid.uuid4().hex[:16]


class ChannelsStore:
    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.store = store
        self.client = store.client
        self.sealer = sealer
        self.table = store.settings.table(CHANNELS)

    def _item(self, channel: Channel) -> dict[str, Any]:
        sealed = self.sealer.seal(
            json.dumps({"fields": channel.fields, "secret": channel.secret}),
            context(channel.user, channel.id),
        )
        return dump(
            {
                "u": channel.user,
                "id": channel.id,
                "name": channel.name,
                "kind": channel.kind,
                "target": channel.target,
                "sealed": sealed,
                "created": channel.created,
                "disabled": channel.disabled,
            }
        )

    def _channel(self, item: dict[str, Any]) -> Channel:
        values = load(item)
        opened = json.loads(self.sealer.open(values["sealed"], context(values["u"], values["id"])))
        return Channel(
            values["id"],
            values["u"],
            values["name"],
            values["kind"],
            opened["fields"],
            float(values["created"]),
            values.get("disabled"),
            opened.get("secret"),
        )

    async def put(self, channel: Channel) -> None:
        async with translate("PutItem channel", self.store.outage):
            await self.client.put_item(
                TableName=self.table,
                Item=self._item(channel),
                ConditionExpression="attribute_not_exists(id)",
            )

    async def get(self, user: str, channel_id: str) -> Channel:
        """The user's channel, or NotFound: another user's id is the same as none."""
        async with translate("GetItem channel", self.store.outage):
            response = await self.client.get_item(
                TableName=self.table, Key=dump({"u": user, "id": channel_id}), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:
            raise NotFound(f"no channel {channel_id}")
        return self._channel(item)

    async def of_user(self, user: str) -> list[Channel]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "u = :u",
            "ExpressionAttributeValues": {":u": value(user)},
            "ConsistentRead": True,
        }
        items = await self.store.query_all("Query channels", request)
        return sorted((self._channel(i) for i in items), key=lambda c: c.created)

    async def delete(self, user: str, channel_id: str) -> None:
        try:
            async with translate("DeleteItem channel", self.store.outage):
                await self.client.delete_item(
                    TableName=self.table,
                    Key=dump({"u": user, "id": channel_id}),
                    ConditionExpression="attribute_exists(id)",
                )
        except AlreadyDone:
            raise NotFound(f"no channel {channel_id}") from None

    async def disable(self, user: str, channel_id: str, reason: str) -> None:
        """Stop sending to a channel whose receiver said it is gone (410)."""
        try:
            async with translate("UpdateItem channel", self.store.outage):
                await self.client.update_item(
                    TableName=self.table,
                    Key=dump({"u": user, "id": channel_id}),
                    UpdateExpression="SET disabled = :why, disabled_at = :now",
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues={":why": value(reason), ":now": value(time.time())},
                )
        except AlreadyDone:
            pass  # deleted meanwhile
