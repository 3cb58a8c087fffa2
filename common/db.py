"""The store: every DynamoDB read and write the services make, over one aioboto3 client."""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from common.errors import (
    AlreadyDone,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
    TrackerError,
)
from common.items import (
    METRIC_ATTRIBUTE,
    Item,
    alert_from_item,
    alert_item,
    point_from_item,
    point_item,
    point_key,
)
from common.models import Alert, Market, Metric, Point
from common.outage import Outage
from common.retry import Backoff, GaveUp, Retry, retry
from common.schema import ALERTS, ALERTS_BY_TIME, META, POINTS
from common.settings import Settings
from common.snapshot import Snapshot, decode, encode, merge

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

T = TypeVar("T")
log = logging.getLogger(__name__)

BATCH = 25  # BatchWriteItem's limit
BATCH_GET = 100  # BatchGetItem's
WRITE_CONCURRENCY = 16
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError)
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
BOARD_KEY, BOARD_HEAD = "board", "board-head"
SLOT = 1000  # part numbers per replica board: part i of slot s is item n = s · SLOT + i


def board_slot(owner: str) -> int:
    """A replica's stable place among the board items."""
    return zlib.crc32(owner.encode())


def _board_key(slot: int, part: int) -> Item:
    return {"k": {"S": BOARD_KEY}, "n": {"N": str(slot * SLOT + part)}}


@dataclass(frozen=True)
class BoardHead:
    """What the service polls to learn that a board changed, written with the board."""

    owner: str
    slot: int
    written_at: float
    window_end: int
    parts: int

    def key(self) -> Item:
        return {"k": {"S": BOARD_HEAD}, "n": {"N": str(self.slot)}}

    def item(self) -> Item:
        return self.key() | {
            "o": {"S": self.owner},
            "w": {"N": repr(self.written_at)},
            "e": {"N": str(self.window_end)},
            "p": {"N": str(self.parts)},
        }

    @classmethod
    def of(cls, item: Item) -> BoardHead:
        return cls(
            item["o"]["S"],
            int(item["n"]["N"]),
            float(item["w"]["N"]),
            int(item["e"]["N"]),
            int(item["p"]["N"]),
        )


# Answers that waiting will not change: the process says so and ends.
_MISCONFIGURED = {
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
}
_TRANSIENT = _THROTTLED | {
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "LimitExceededException",
    "RequestTimeout",
}


def _client_error(what: str, exc: ClientError) -> TrackerError:
    """An answer DynamoDB gave, as the store's error tree sees it."""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "ConditionalCheckFailedException":
        return AlreadyDone(what)
    if code in _TRANSIENT or status >= 500:
        return StoreUnavailable(f"{what}: DynamoDB answered {code or status}", code)
    if code == "ResourceNotFoundException":
        return StoreMisconfigured(f"{what}: no such table (run `tracker init-db`?): {exc}", code)
    if code in _MISCONFIGURED:
        return StoreMisconfigured(f"{what} failed: {exc}", code)
    return StoreError(f"{what} failed: {exc}", code)


@asynccontextmanager
async def translate(what: str, outage: Outage | None = None) -> AsyncIterator[None]:
    """Turn SDK exceptions into the store's error tree, keeping the cause and AWS code, and
    tell `outage` whether DynamoDB answered."""
    try:
        yield
    except ClientError as exc:
        error = _client_error(what, exc)
        if outage is not None:
            if isinstance(error, StoreUnavailable):
                outage.failed(error)
            else:
                outage.answered()
        raise error from exc
    except (BotoCoreError, OSError) as exc:
        detail = "DynamoDB unreachable: " if isinstance(exc, _UNREACHABLE) else ""
        unavailable = StoreUnavailable(f"{what}: {detail}{exc}")
        if outage is not None:
            outage.failed(unavailable)
        raise unavailable from exc
    if outage is not None:
        outage.answered()


async def in_chunks(
    items: Sequence[T], size: int, each: Callable[[Sequence[T]], Awaitable[None]]
) -> None:
    """`each` over consecutive chunks of `size`, WRITE_CONCURRENCY of them at a time; the
    first failure cancels the others and is raised as itself."""
    semaphore = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def one(chunk: Sequence[T]) -> None:
        async with semaphore:
            await each(chunk)

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(0, len(items), size):
                group.create_task(one(items[i : i + size]))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


def tick_range(start: float, end: float) -> tuple[int, int]:
    """Integer tick bounds of `start < t <= end`, for a BETWEEN condition."""
    return math.floor(start) + 1, math.floor(end)


class Store:
    def __init__(self, client: DynamoDBClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.points_table = settings.table(POINTS)
        self.alerts_table = settings.table(ALERTS)
        self.meta_table = settings.table(META)
        self.outage = Outage()

    async def ping(self) -> None:
        async with translate("DescribeTable", self.outage):
            await self.client.describe_table(TableName=self.points_table)

    async def stream_arn(self) -> str:
        """The points table's stream (StoreMisconfigured if the table or stream is missing)."""
        async with translate(f"DescribeTable {self.points_table}", self.outage):
            response = await self.client.describe_table(TableName=self.points_table)
        arn = response["Table"].get("LatestStreamArn")
        if arn is None:
            raise StoreMisconfigured(f"{self.points_table} has no stream: run `tracker init-db`")
        return str(arn)

    # -- points -------------------------------------------------------------------------------
    async def put_points(self, points: Sequence[Point]) -> int:
        """Write points (a re-written tick overwrites); returns how many distinct points went."""
        unique = {(p.market, p.t): p for p in points}  # one request may not name a key twice
        items = [point_item(p, self.settings.retention) for p in unique.values()]
        # A failure ends the call: the caller re-writes the whole batch later, which is safe
        # because a re-written point overwrites itself.
        await in_chunks(items, BATCH, self._batch_write)
        return len(items)

    async def _batch_write(self, items: Sequence[Item]) -> None:
        request = {self.points_table: [{"PutRequest": {"Item": i}} for i in items]}
        await self._batched(
            "BatchWriteItem",
            lambda r: self.client.batch_write_item(RequestItems=r),
            request,
            "UnprocessedItems",
        )

    async def _batched(
        self,
        what: str,
        send: Callable[[dict[str, Any]], Awaitable[Any]],
        request: dict[str, Any],
        unprocessed: str,
        take: Callable[[Any], None] | None = None,
    ) -> None:
        """Send a batch request, then what DynamoDB left `unprocessed`, with backoff (as a
        throttled request) until nothing is left; StoreUnavailable if that does not happen
        (transient: the caller tries again later). `take` sees each answer."""
        pending = request

        async def attempt() -> None:
            nonlocal pending
            try:
                async with translate(what, self.outage):
                    response = await send(pending)
            except StoreUnavailable as exc:
                if exc.code in _THROTTLED:  # a moment's wait usually does; an outage does not
                    raise Retry("throttled") from exc
                raise
            if take is not None:
                take(response)
            pending = dict(response.get(unprocessed) or {})
            if pending:
                raise Retry(f"{unprocessed} left")

        try:
            await retry(attempt, what, backoff=Backoff(base=0.05, cap=2), attempts=10)
        except GaveUp as exc:
            raise StoreUnavailable(str(exc), unprocessed) from exc

    async def pages(self, what: str, request: dict[str, Any]) -> AsyncGenerator[list[Item]]:
        """The items of a Query, page by page (the caller may stop early)."""
        async with translate(what, self.outage):
            while True:
                response = await self.client.query(**request)
                yield response["Items"]
                if "LastEvaluatedKey" not in response:
                    return
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def query_all(self, what: str, request: dict[str, Any]) -> list[Item]:
        """Every item of a Query, every page read."""
        return [i async for page in self.pages(what, request) for i in page]

    def _range(self, market: Market, lo: int, hi: int) -> dict[str, Any]:
        """The Query of one market's points with lo <= t <= hi."""
        return {
            "TableName": self.points_table,
            "KeyConditionExpression": "m = :m AND t BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":m": {"S": market.key},
                ":lo": {"N": str(lo)},
                ":hi": {"N": str(hi)},
            },
        }

    async def query_points(
        self, market: Market, start: float, end: float, consistent: bool = False
    ) -> list[Point]:
        """Points with start < t <= end, oldest first, every page read (`consistent`: every
        write acknowledged before the Query is in it)."""
        lo, hi = tick_range(start, end)
        if lo > hi:
            return []
        request = self._range(market, lo, hi)
        if consistent:
            request["ConsistentRead"] = True
        return [
            point_from_item(i) async for page in self.pages("Query points", request) for i in page
        ]

    async def get_points(
        self, keys: Sequence[tuple[Market, int]]
    ) -> dict[tuple[Market, int], Point]:
        """The stored points of these keys (absent ones are not in the answer): BatchGetItem,
        100 keys a call, a few calls at a time, unprocessed keys asked again. Strongly
        consistent: an eventual read may miss an overwrite whose record was handled already,
        and nothing would come to correct it."""
        found: dict[tuple[Market, int], Point] = {}

        def take(response: Any) -> None:
            for item in response["Responses"].get(self.points_table, []):
                point = point_from_item(item)
                found[(point.market, point.t)] = point

        async def read(chunk: Sequence[tuple[Market, int]]) -> None:
            keys = [point_key(m, t) for m, t in chunk]
            await self._batched(
                "BatchGetItem",
                lambda r: self.client.batch_get_item(RequestItems=r),
                {self.points_table: {"Keys": keys, "ConsistentRead": True}},
                "UnprocessedKeys",
                take,
            )

        await in_chunks(keys, BATCH_GET, read)
        return found

    async def query_series(
        self, market: Market, start: float, end: float, metric: Metric
    ) -> list[tuple[int, float]]:
        """(tick, value) of one metric with start < t <= end, oldest first: only the two
        attributes are read, which is all a history answer needs."""
        lo, hi = tick_range(start, end)
        if lo > hi:
            return []
        attribute = METRIC_ATTRIBUTE[metric]
        request = self._range(market, lo, hi) | {"ProjectionExpression": f"t, {attribute}"}
        return [
            (int(i["t"]["N"]), float(i[attribute]["N"]))
            async for page in self.pages("Query series", request)
            for i in page
            if attribute in i
        ]

    async def _newest(self, table: str, market: Market, **extra: Any) -> Item | None:
        """The market's item with the highest `t` in a table: one Query of one item."""
        async with translate(f"Query newest item of {market.key}", self.outage):
            response = await self.client.query(
                TableName=table,
                KeyConditionExpression="m = :m",
                ExpressionAttributeValues={":m": {"S": market.key}},
                ScanIndexForward=False,
                Limit=1,
                **extra,
            )
        items = response["Items"]
        return items[0] if items else None

    async def point_before(self, market: Market, t: int) -> Point | None:
        """The market's newest point before tick t: one Query of one item."""
        async with translate(f"Query the point before {t} of {market.key}", self.outage):
            response = await self.client.query(
                TableName=self.points_table,
                KeyConditionExpression="m = :m AND t < :t",
                ExpressionAttributeValues={":m": {"S": market.key}, ":t": {"N": str(t)}},
                ScanIndexForward=False,
                Limit=1,
            )
        items = response["Items"]
        return point_from_item(items[0]) if items else None

    async def latest_point(self, market: Market) -> Point | None:
        item = await self._newest(self.points_table, market)
        return point_from_item(item) if item else None

    async def get_point(self, market: Market, t: int) -> Point | None:
        async with translate("GetItem point", self.outage):
            response = await self.client.get_item(
                TableName=self.points_table, Key=point_key(market, t), ConsistentRead=True
            )
        item = response.get("Item")
        return point_from_item(item) if item else None

    # -- alerts -------------------------------------------------------------------------------
    async def put_alert(self, alert: Alert) -> None:
        """Record an alert once; raises AlreadyDone if this point already alerted (an alert
        that is news goes with its deliveries: DeliveriesStore.record_house)."""
        async with translate(f"alert {alert.id}", self.outage):
            await self.client.put_item(
                TableName=self.alerts_table,
                Item=alert_item(alert),
                # The id is the key: a redelivered stream record must not make a second alert.
                ConditionExpression="attribute_not_exists(m)",
            )

    async def last_alert_time(self, market: Market) -> int | None:
        item = await self._newest(self.alerts_table, market, ProjectionExpression="t")
        return int(item["t"]["N"]) if item else None

    async def list_alerts(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first: one market's partition, or the by-time index filtered by exchange."""
        values: dict[str, Any] = {":lo": {"N": str(math.floor(since or 0))}}
        request: dict[str, Any] = {"TableName": self.alerts_table, "ScanIndexForward": False}
        if exchange and symbol:
            request["KeyConditionExpression"] = "m = :m AND t >= :lo"
            values[":m"] = {"S": Market(exchange, symbol).key}
        else:
            request["IndexName"] = ALERTS_BY_TIME
            request["KeyConditionExpression"] = "g = :g AND t >= :lo"
            values[":g"] = {"S": "alert"}
            if exchange or symbol:
                prefix = f"{exchange}:" if exchange else ""
                values[":f"] = {"S": f"{prefix}{symbol}" if symbol else prefix}
                # Without both parts there is no key to ask for: filter the index by market.
                request["FilterExpression"] = (
                    "begins_with(m, :f)" if not symbol else "contains(m, :f)"
                )
        request["ExpressionAttributeValues"] = values
        alerts: list[Alert] = []
        async with aclosing(self.pages("Query alerts", request)) as pages:
            async for page in pages:
                found = [alert_from_item(i) for i in page]
                alerts.extend(a for a in found if symbol is None or a.market.symbol == symbol)
                if len(alerts) >= limit:
                    break
        return alerts[:limit]

    # -- meta: the boards and heartbeats -----------------------------------------------------
    async def put_snapshot(
        self, snapshot: Snapshot, previous_parts: int, parts: Sequence[bytes] | None = None
    ) -> int:
        """Replace this replica's board — its parts and its head — in one transaction;
        returns how many parts it has now (`parts`: the snapshot already encoded)."""
        slot = board_slot(snapshot.owner)
        parts = encode(snapshot) if parts is None else parts
        head = BoardHead(snapshot.owner, slot, snapshot.written_at, snapshot.window_end, len(parts))
        await self.replace_parts(
            "write board snapshot",
            lambda i: _board_key(slot, i),
            parts,
            previous_parts,
            head.item(),
        )
        return len(parts)

    async def replace_parts(
        self,
        what: str,
        key: Callable[[int], Item],
        parts: Sequence[bytes],
        previous_parts: int,
        head: Item,
    ) -> None:
        """A document's parts in the meta table (part i at `key(i)`, its bytes in `b`), the
        parts an older, longer version left deleted, and its head, in one transaction: a
        reader sees the whole old document or the whole new one (or parts of different
        stamps, and reads again)."""
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.meta_table, "Item": key(i) | {"b": {"B": b}}}}
            for i, b in enumerate(parts)
        ]
        writes += [
            {"Delete": {"TableName": self.meta_table, "Key": key(i)}}
            for i in range(len(parts), previous_parts)
        ]
        writes.append({"Put": {"TableName": self.meta_table, "Item": head}})
        async with translate(what, self.outage):
            await self.client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]

    def _meta(self, k: str) -> dict[str, Any]:
        """The consistent Query of every meta item under one key."""
        return {
            "TableName": self.meta_table,
            "KeyConditionExpression": "k = :k",
            "ExpressionAttributeValues": {":k": {"S": k}},
            "ConsistentRead": True,
        }

    async def board_heads(self) -> list[BoardHead]:
        """Who publishes a board, and when each last did: one small Query."""
        pages = self.pages("read board heads", self._meta(BOARD_HEAD))
        return [BoardHead.of(i) async for page in pages for i in page]

    async def _boards(self) -> list[Snapshot | None]:
        """Every replica's board; None for one caught between its transaction's writes (a
        Query is not isolated from them)."""
        slots: dict[int, list[bytes]] = {}
        async for page in self.pages("read board snapshot", self._meta(BOARD_KEY)):
            for i in page:  # in part order: the sort key is slot · SLOT + part
                slots.setdefault(int(i["n"]["N"]) // SLOT, []).append(bytes(i["b"]["B"]))
        return [decode(parts) for parts in slots.values()]

    async def get_snapshot(self) -> Snapshot | None:
        """Every replica's board, merged; read up to twice more while one is torn."""
        boards = await self._boards()
        for _ in range(2):
            if None not in boards:
                break
            boards = await self._boards()
        return merge([b for b in boards if b is not None])

    async def drop_boards(self, heads: Sequence[BoardHead]) -> None:
        """Delete boards of replicas gone for good (parts and head)."""
        for head in heads:
            keys = [_board_key(head.slot, i) for i in range(head.parts)] + [head.key()]
            deletes = [{"Delete": {"TableName": self.meta_table, "Key": k}} for k in keys]
            async with translate(f"drop the board of {head.owner}", self.outage):
                await self.client.transact_write_items(TransactItems=deletes)  # type: ignore[arg-type]

    async def put_heartbeat(self, name: str, fields: dict[str, float | int | str]) -> None:
        item: Item = {"k": {"S": f"heartbeat#{name}"}, "n": {"N": "0"}}
        for key, value in fields.items():
            item[key] = {"S": value} if isinstance(value, str) else {"N": repr(value)}
        async with translate(f"heartbeat {name}", self.outage):
            await self.client.put_item(TableName=self.meta_table, Item=item)

    async def get_heartbeat(self, name: str) -> dict[str, float | str] | None:
        async with translate(f"heartbeat {name}", self.outage):
            response = await self.client.get_item(
                TableName=self.meta_table, Key={"k": {"S": f"heartbeat#{name}"}, "n": {"N": "0"}}
            )
        item = response.get("Item")
        if not item:
            return None
        return {
            key: (float(value["N"]) if "N" in value else value["S"])
            for key, value in item.items()
            if key not in ("k", "n")
        }
