"""Users' alerts (table `user-alerts`) and the outbox of deliveries (table `deliveries`).

An alert of a rule and one delivery per channel are written in one transaction with the
rule's progress, conditional on the alert's id: a point delivered twice by the stream makes
neither a second alert nor a second delivery. A delivery is `pending` while it carries `q`
(index `due`, by `n`, the time of its next attempt in ms); the notifier claims one by moving
`n` past a lease, so a notifier killed mid-send leaves it to be tried again when the lease
ends. The house rule's alerts have deliveries too (channel `house-<i>`, no user).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

from botocore.exceptions import ClientError

from common.attrs import dump, load, value
from common.conditions import Progress
from common.db import Store, translate
from common.errors import AlreadyDone, StoreError
from common.items import alert_item
from common.models import Alert
from common.rules import Rule, condition_dict, condition_from_dict
from common.rules_store import RulesStore, progress_update
from common.schema import DELIVERIES, DELIVERIES_BY_USER, DELIVERIES_DUE, RULES, USER_ALERTS
from common.ticks import iso

Status = Literal["pending", "delivered", "failed", "suppressed"]
DUE = "due"
HOUSE = "house-"  # channels of the house rule: house-<i>, the i-th TRACKER_NOTIFY_URLS entry
KEEP = 7 * 86400  # seconds a finished delivery stays visible


def alert_sort_key(t: int, rule_id: str) -> str:
    return f"{t:012d}:{rule_id}"


@dataclass(frozen=True)
class UserAlert:
    rule: str
    user: str
    exchange: str
    symbol: str
    metric: str
    t: int
    value: float
    reference: float | None
    condition: dict[str, Any]
    rule_name: str = ""

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.t}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "metric": self.metric,
            "time": iso(self.t),
            "value": self.value,
            "reference": self.reference,
            "condition": self.condition,
        }


def user_alert_of(item: dict[str, Any]) -> UserAlert:
    v = load(item)
    return UserAlert(
        v["rule"],
        v["u"],
        v["exchange"],
        v["symbol"],
        v["metric"],
        int(v["t"]),
        float(v["value"]),
        None if v.get("reference") is None else float(v["reference"]),
        condition_dict(condition_from_dict(v["condition"])),  # in its documented order
        v.get("rule_name", ""),
    )


@dataclass(frozen=True)
class Delivery:
    alert: str
    channel: str
    user: str | None
    status: Status
    attempts: int
    next_ms: int | None
    created_ms: int
    payload: dict[str, Any]
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
        }


def delivery_of(item: dict[str, Any]) -> Delivery:
    v = load(item)
    return Delivery(
        v["a"],
        v["c"],
        v.get("u"),
        v["status"],
        int(v.get("attempts", 0)),
        v.get("n"),
        int(v["w"]),
        json.loads(v["payload"]),
        v.get("ls"),
        v.get("le"),
        v.get("at"),
    )


def delivery_item(
    alert_id: str, channel: str, user: str | None, payload: dict[str, Any]
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return dump(
        {
            "a": alert_id,
            "c": channel,
            "u": user,
            "status": "pending",
            "attempts": 0,
            "q": DUE,
            "n": now,
            "w": now,
            "payload": json.dumps(payload, separators=(",", ":")),
            "x": now // 1000 + KEEP,
        }
    )


def _cancelled_by_condition(exc: StoreError) -> bool:
    cause = exc.__cause__
    if not isinstance(cause, ClientError):
        return False
    reasons = cause.response.get("CancellationReasons") or []
    return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or (
        "ConditionalCheckFailed" in str(cause)
    )


TRANSACT_MAX = 100  # writes in one TransactWriteItems


class Fire(NamedTuple):
    """A user's alert as the alerter records it."""

    alert: UserAlert
    rule: Rule
    progress: Progress
    channels: list[str]
    payload: dict[str, Any]


class DeliveriesStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self.alerts = store.settings.table(USER_ALERTS)
        self.deliveries = store.settings.table(DELIVERIES)
        self.rules = store.settings.table(RULES)
        self.rule_versions = RulesStore(store)
        self.retention = store.settings.retention

    async def record(
        self,
        alert: UserAlert,
        rule: Rule,
        progress: Progress,
        channels: list[str],
        payload: dict[str, Any],
    ) -> None:
        """The alert, the rule's progress and a pending delivery per channel, all or none;
        AlreadyDone when this point already alerted this rule."""
        writes = self._writes(Fire(alert, rule, progress, channels, payload))
        try:
            await self._transact(f"alert {alert.id}", writes)
        except AlreadyDone:  # recorded before: a crash may have come between it and its bump
            await self.rule_versions.bump([rule.user])
            raise
        await self.rule_versions.bump([rule.user])

    async def record_all(self, fires: Sequence[Fire], concurrency: int = 4) -> list[bool]:
        """Many alerts (a crash tick fires thousands), in as few transactions of up to
        `TRANSACT_MAX` writes as hold them, `concurrency` at a time; each alert still all or
        none with its progress and deliveries. Whether each was recorded now (False: it was
        already). A transaction that an alert recorded already cancels is done again alert by
        alert."""
        chunks: list[list[Fire]] = []
        size = TRANSACT_MAX
        for fire in fires:
            n = len(fire.channels) + 2
            # one write per item in a transaction: a rule's progress once
            if size + n > TRANSACT_MAX or any(f.rule.id == fire.rule.id for f in chunks[-1]):
                chunks.append([])
                size = 0
            chunks[-1].append(fire)
            size += n
        if len({f.rule.id for f in fires}) < len(fires):
            concurrency = 1  # a rule twice: its chunks in order, never at once
        slots = asyncio.Semaphore(concurrency)

        async def one(chunk: list[Fire]) -> list[bool]:
            async with slots:
                try:
                    writes = [w for fire in chunk for w in self._writes(fire)]
                    await self._transact(f"{len(chunk)} alert(s)", writes)
                    return [True] * len(chunk)
                except AlreadyDone:
                    done = []
                    for fire in chunk:
                        try:
                            await self._transact(f"alert {fire.alert.id}", self._writes(fire))
                            done.append(True)
                        except AlreadyDone:
                            done.append(False)
                    return done

        recorded = [new for done in await asyncio.gather(*map(one, chunks)) for new in done]
        # The progress written changes the users' rules (each bumped even if recorded before:
        # a crash may have come between the record and its bump).
        await self.rule_versions.bump(f.rule.user for f in fires)
        return recorded

    def _writes(self, fire: Fire) -> list[dict[str, Any]]:
        alert, rule, progress, channels, payload = fire
        item = dump(
            {
                "u": alert.user,
                "s": alert_sort_key(alert.t, alert.rule),
                "rule": alert.rule,
                "rule_name": rule.name,
                "exchange": alert.exchange,
                "symbol": alert.symbol,
                "metric": alert.metric,
                "t": alert.t,
                "value": alert.value,
                "reference": alert.reference,
                "condition": alert.condition,
                "x": alert.t + self.retention,
            }
        )
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.alerts,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(s)",
                }
            },
            {"Update": progress_update(self.rules, rule, progress)},
        ]
        writes += [
            {
                "Put": {
                    "TableName": self.deliveries,
                    "Item": delivery_item(alert.id, c, alert.user, payload),
                    "ConditionExpression": "attribute_not_exists(a)",
                }
            }
            for c in channels
        ]
        return writes

    async def record_house(
        self, alert: Alert, channels: list[str], payload: dict[str, Any]
    ) -> None:
        """A house-rule alert and its deliveries, all or none; AlreadyDone if recorded."""
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.store.alerts_table,
                    "Item": alert_item(alert),
                    "ConditionExpression": "attribute_not_exists(m)",
                }
            }
        ]
        writes += [
            {
                "Put": {
                    "TableName": self.deliveries,
                    "Item": delivery_item(alert.id, c, None, payload),
                    "ConditionExpression": "attribute_not_exists(a)",
                }
            }
            for c in channels
        ]
        await self._transact(f"alert {alert.id}", writes)

    async def _transact(self, what: str, writes: list[dict[str, Any]]) -> None:
        try:
            async with translate(what, self.store.outage):
                await self.client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        except StoreError as exc:
            if exc.code == "TransactionCanceledException" and _cancelled_by_condition(exc):
                raise AlreadyDone(what) from None
            raise

    async def list_alerts(
        self, user: str, rule: str | None, since: int | None, limit: int
    ) -> list[UserAlert]:
        values: dict[str, Any] = {":u": value(user), ":lo": value(alert_sort_key(since or 0, ""))}
        request: dict[str, Any] = {
            "TableName": self.alerts,
            "KeyConditionExpression": "u = :u AND s >= :lo",
            "ScanIndexForward": False,
        }
        if rule is not None:
            request["FilterExpression"] = "#r = :r"
            request["ExpressionAttributeNames"] = {"#r": "rule"}
            values[":r"] = value(rule)
        request["ExpressionAttributeValues"] = values
        found: list[UserAlert] = []
        async with translate("Query user alerts", self.store.outage):
            while len(found) < limit:
                response = await self.client.query(**request)
                found += [user_alert_of(i) for i in response["Items"]]
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

    async def list_deliveries(
        self, user: str, alert: str | None, status: str | None, limit: int
    ) -> list[Delivery]:
        values: dict[str, Any] = {":u": value(user)}
        request: dict[str, Any] = {
            "TableName": self.deliveries,
            "IndexName": DELIVERIES_BY_USER,
            "KeyConditionExpression": "u = :u",
            "ScanIndexForward": False,
        }
        filters, names = [], {}
        if alert is not None:
            filters.append("a = :a")
            values[":a"] = value(alert)
        if status is not None:
            filters.append("#s = :s")
            names["#s"] = "status"
            values[":s"] = value(status)
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if names:
            request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        found: list[Delivery] = []
        async with translate("Query deliveries", self.store.outage):
            while len(found) < limit:
                response = await self.client.query(**request)
                found += [delivery_of(i) for i in response["Items"]]
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

    async def due(self, now_ms: int, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, soonest first."""
        async with translate("Query due deliveries", self.store.outage):
            response = await self.client.query(
                TableName=self.deliveries,
                IndexName=DELIVERIES_DUE,
                KeyConditionExpression="q = :q AND n <= :now",
                ExpressionAttributeValues={":q": value(DUE), ":now": value(now_ms)},
                Limit=limit,
            )
        return [delivery_of(i) for i in response["Items"]]

    async def claim(self, delivery: Delivery, lease_until_ms: int) -> Delivery | None:
        """Take a due delivery for one attempt (None: another notifier took it, or it is
        finished). The attempt is counted now: a kill mid-send still counts it."""
        try:
            async with translate("claim a delivery", self.store.outage):
                response = await self.client.update_item(
                    **self._claim(delivery, lease_until_ms), ReturnValues="ALL_NEW"
                )
        except AlreadyDone:
            return None
        return delivery_of(response["Attributes"])

    async def claim_all(
        self, seen: Sequence[Delivery], lease_until_ms: int
    ) -> list[Delivery | None]:
        """`claim` for many (a burst): transactions of up to `TRANSACT_MAX` claims, which cost
        twice the write units of single ones but a hundredth of the requests. A transaction a
        claim cancels (another notifier took one) is done again claim by claim."""
        out: list[Delivery | None] = []
        for i in range(0, len(seen), TRANSACT_MAX):
            chunk = seen[i : i + TRANSACT_MAX]
            writes = [{"Update": self._claim(d, lease_until_ms)} for d in chunk]
            try:
                await self._transact(f"claim {len(chunk)} deliveries", writes)
            except AlreadyDone:
                out += [await self.claim(d, lease_until_ms) for d in chunk]
                continue
            out += [replace(d, attempts=d.attempts + 1, next_ms=lease_until_ms) for d in chunk]
        return out

    def _claim(self, delivery: Delivery, lease_until_ms: int) -> dict[str, Any]:
        return {
            "TableName": self.deliveries,
            "Key": dump({"a": delivery.alert, "c": delivery.channel}),
            "UpdateExpression": "SET n = :lease ADD attempts :one",
            "ConditionExpression": "n = :seen AND q = :q",
            "ExpressionAttributeValues": {
                ":lease": value(lease_until_ms),
                ":seen": value(delivery.next_ms),
                ":one": value(1),
                ":q": value(DUE),
            },
        }

    async def settle(
        self,
        delivery: Delivery,
        status: Status,
        last_status: int | None,
        last_error: str | None,
        next_ms: int | None = None,
    ) -> None:
        """The attempt's outcome: finished (`delivered`, `failed`, `suppressed`), or still
        `pending` with its next attempt at `next_ms`."""
        values: dict[str, Any] = {":st": value(status)}
        sets, removes = ["#s = :st"], []
        for name, given in (("ls", last_status), ("le", last_error)):
            if given is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value(given)
        if status == "pending":
            assert next_ms is not None
            sets.append("n = :n")
            values[":n"] = value(next_ms)
        else:
            removes += ["q", "n"]
        if status == "delivered":
            sets.append("#at = :at")
            values[":at"] = value(time.time())
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        names = {"#s": "status"} | ({"#at": "at"} if status == "delivered" else {})
        async with translate("settle a delivery", self.store.outage):
            await self.client.update_item(
                TableName=self.deliveries,
                Key=dump({"a": delivery.alert, "c": delivery.channel}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(a)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
