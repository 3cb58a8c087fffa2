"""Users' rules (table `rules`, `u` + `id`) and their changes (index `changes`: g + c).

Every write the API makes sets `c`, the change time in milliseconds, so the alerter learns of
each change with one small Query of the index a second; a deleted rule stays as a tombstone
(`del`, expiring by TTL) so that its deletion is a change like any other. The alerter writes
only the rule's progress, which sets `c` too (`progress_update`): a restarted alerter reads
the progress made since its checkpoint from the same index.

Each user also has one version item (`id` "#version", never a rule's id: those are `rl_…`),
counted up after every write to their rules, the alerter's progress included, so that a reader
can tell with one GetItem whether the rules it read before are still those stored
(service/rules_cache.py).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from sys import intern
from typing import Any, cast

from common.attrs import dump, load, value
from common.conditions import ARMED, Progress, Repeat, State, Terms, shared_progress
from common.db import Store, translate
from common.errors import AlreadyDone, NotFound
from common.models import Metric
from common.rules import Rule, condition_dict, condition_from_dict, market_of, shared_number
from common.schema import RULE_CHANGES, RULES

TOMBSTONE_TTL = 7 * 86400
GROUP = "rule"
VERSION_ID = "#version"
PAGE = 500  # items in one page of the change index (see `changes`)


def new_rule_id() -> str:
    return "rl_" + uuid.uuid4().hex[:16]


def now_ms() -> int:
    return int(time.time() * 1000)


def rule_item(rule: Rule) -> dict[str, Any]:
    return dump(rule_fields(rule))


def rule_fields(rule: Rule) -> dict[str, Any]:
    """A rule as plain values: its item's attributes (also the alerter's checkpoint of them)."""
    p = rule.progress
    return {
        "u": rule.user,
        "id": rule.id,
        "name": rule.name,
        "m": rule.market.key,
        "metric": rule.metric,
        "cond": condition_dict(rule.condition),
        "repeat": rule.terms.repeat,
        "cooldown": rule.terms.cooldown,
        "expires": rule.terms.expires,
        "ch": list(rule.channels),
        "paused": rule.paused,
        "created": rule.created,
        "g": GROUP,
        "c": rule.changed,
        "state": p.state,
        "fired": p.fired,
        "lf": p.last_fired,
        "j": p.judged,
    }


def rule_of(item: dict[str, Any]) -> Rule:
    return rule_from_fields(load(item))


def rule_from_fields(v: dict[str, Any]) -> Rule:
    # The alerter holds every rule: the words and numbers many rules share are one object each
    # (interned), not one per rule as each answer's JSON decodes them.
    return Rule(
        id=v["id"],
        user=intern(v["u"]),
        name=intern(v["name"]),
        market=market_of(v["m"]),
        metric=cast(Metric, intern(v["metric"])),
        condition=condition_from_dict(v["cond"]),
        terms=Terms(
            cast(Repeat, intern(v["repeat"])),
            shared_number(int(v["cooldown"])),
            math.ceil(v["created"]),
            v.get("expires"),
        ),
        channels=tuple(map(intern, v.get("ch", []))),
        created=float(v["created"]),
        paused=bool(v.get("paused", False)),
        changed=int(v["c"]),
        deleted=bool(v.get("del", False)),
        progress=shared_progress(
            Progress(
                cast(State, intern(v.get("state", "armed"))),
                int(v.get("fired", 0)),
                v.get("lf"),
                v.get("j"),
            )
        ),
    )


def progress_update(table: str, rule: Rule, progress: Progress) -> dict[str, Any]:
    """The UpdateItem of a rule's progress (alone, or in the transaction that fires it)."""
    names = {"#s": "state"}
    values: dict[str, Any] = {
        ":s": value(progress.state),
        ":f": value(progress.fired),
        ":c": value(now_ms()),
    }
    # The change time too: a restarted alerter reads the progress made since its checkpoint
    # from the change index, with the rules changed since.
    sets = ["#s = :s", "fired = :f", "c = :c"]
    if progress.last_fired is not None:
        sets.append("lf = :lf")
        values[":lf"] = value(progress.last_fired)
    if progress.judged is not None:
        sets.append("j = :j")
        values[":j"] = value(progress.judged)
    return {
        "TableName": table,
        "Key": dump({"u": rule.user, "id": rule.id}),
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(id)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


class RulesStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self.table = store.settings.table(RULES)
        self.bumped: list[Callable[[str], None]] = []  # told of each user's bump, once landed

    async def put(self, rule: Rule) -> Rule:
        rule = replace(rule, changed=now_ms())
        async with translate("PutItem rule", self.store.outage):
            await self.client.put_item(
                TableName=self.table,
                Item=rule_item(rule),
                ConditionExpression="attribute_not_exists(id)",
            )
        await self.bump([rule.user])
        return rule

    async def version(self, user: str) -> int:
        """The user's rules version: it has changed whenever any of their rules has (0: no
        write yet)."""
        async with translate("GetItem rules version", self.store.outage):
            response = await self.client.get_item(
                TableName=self.table,
                Key=dump({"u": user, "id": VERSION_ID}),
                ConsistentRead=True,
            )
        return int(response.get("Item", {}).get("v", {}).get("N", 0))

    async def bump(self, users: Iterable[str]) -> None:
        """Count each user's rules version up, after a write to their rules has landed."""

        async def one(user: str) -> None:
            async with translate("UpdateItem rules version", self.store.outage):
                await self.client.update_item(
                    TableName=self.table,
                    Key=dump({"u": user, "id": VERSION_ID}),
                    UpdateExpression="ADD v :one",
                    ExpressionAttributeValues={":one": value(1)},
                )
            for tell in self.bumped:
                tell(user)

        await asyncio.gather(*map(one, set(users)))

    async def get(self, user: str, rule_id: str) -> Rule:
        """The user's rule, or NotFound (another user's id answers the same as none)."""
        async with translate("GetItem rule", self.store.outage):
            response = await self.client.get_item(
                TableName=self.table, Key=dump({"u": user, "id": rule_id}), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None or rule_id == VERSION_ID:
            raise NotFound(f"no rule {rule_id}")
        rule = rule_of(item)
        if rule.deleted:
            raise NotFound(f"no rule {rule_id}")
        return rule

    async def of_user(self, user: str) -> list[Rule]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "u = :u",
            "ExpressionAttributeValues": {":u": value(user)},
            "ConsistentRead": True,
        }
        items = await self.store.query_all("Query rules", request)
        rules = [rule_of(i) for i in items if i["id"]["S"] != VERSION_ID]
        return sorted((r for r in rules if not r.deleted), key=lambda r: r.created)

    async def replace(self, rule: Rule, reset: bool) -> Rule:
        """Write a changed definition (PATCH); `reset`: the condition or market changed, so
        the progress starts again (armed, nothing judged)."""
        current = await self.get(rule.user, rule.id)
        progress = ARMED if reset else current.progress
        if reset:
            progress = progress._replace(fired=current.progress.fired)
        changed = replace(rule, progress=progress, changed=now_ms())
        try:
            async with translate("PutItem rule", self.store.outage):
                await self.client.put_item(
                    TableName=self.table,
                    Item=rule_item(changed),
                    ConditionExpression="attribute_exists(id) AND attribute_not_exists(del)",
                )
        except AlreadyDone:
            raise NotFound(f"no rule {rule.id}") from None
        await self.bump([rule.user])
        return changed

    async def delete(self, user: str, rule_id: str) -> None:
        """Leave a tombstone: the alerter learns of the deletion from the change index."""
        if rule_id == VERSION_ID:
            raise NotFound(f"no rule {rule_id}")
        now = time.time()
        try:
            async with translate("delete rule", self.store.outage):
                await self.client.update_item(
                    TableName=self.table,
                    Key=dump({"u": user, "id": rule_id}),
                    UpdateExpression="SET #d = :t, c = :c, x = :x",
                    ConditionExpression="attribute_exists(id) AND attribute_not_exists(#d)",
                    ExpressionAttributeNames={"#d": "del"},
                    ExpressionAttributeValues={
                        ":t": value(True),
                        ":c": value(now_ms()),
                        ":x": value(int(now) + TOMBSTONE_TTL),
                    },
                )
        except AlreadyDone:
            raise NotFound(f"no rule {rule_id}") from None
        await self.bump([user])

    async def changes(self, since_ms: int | None = None) -> AsyncIterator[Rule]:
        """Every rule changed after `since_ms` (None: every rule), tombstones included, read a
        page at a time (the alerter loads 100,000 rules so: 0.55 KB of memory a rule, where
        1 MB pages left 1.3 KB)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": RULE_CHANGES,
            "KeyConditionExpression": "g = :g AND c > :c",
            "ExpressionAttributeValues": {":g": value(GROUP), ":c": value(since_ms or -1)},
            # Pages of PAGE items, not DynamoDB's 1 MB (some 3,000 rules): a page's parsed
            # items stand in memory at once, and the heap they grow stays the process's.
            "Limit": PAGE,
        }
        async for page in self.store.pages("Query rule changes", request):
            for item in page:
                yield rule_of(item)

    async def save_progress(self, rule: Rule, progress: Progress) -> None:
        try:
            async with translate("UpdateItem rule progress", self.store.outage):
                await self.client.update_item(**progress_update(self.table, rule, progress))
        except AlreadyDone:
            return  # the rule was removed meanwhile
        await self.bump([rule.user])
