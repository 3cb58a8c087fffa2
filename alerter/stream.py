"""Reading the points table's DynamoDB Stream: shards, leases, checkpoints.

Each shard has a lease item in the meta table (`lease#<shard id>`): an owner, an expiry, the
sequence number handled last (the checkpoint) and, once the shard is closed and read to its
end, `done`. A replica reads a shard only while it holds the lease; leases are taken and
renewed with conditional writes, so two replicas split the shards and never read one twice
at the same time. A child shard is read only after its parent is done, which keeps each
market's records in order across shard splits. The checkpoint is written after a batch is
handled, so a restart resumes where it stopped (records may be handled twice, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from alerter.records import Change, parse
from common.db import Store, translate
from common.errors import AlreadyDone, StoreError, StoreMisconfigured, StoreUnavailable
from common.lifecycle import sleep_unless
from common.outage import Outage
from common.retry import Backoff, until_answered
from common.schema import META
from common.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodbstreams import DynamoDBStreamsClient

log = logging.getLogger(__name__)
RECORDS_PER_READ = 1000  # GetRecords' largest Limit
T = TypeVar("T")
# handle(changes, since): `since` set when the shard was read by another replica until then.
Handler = Callable[[list[Change], float | None], Awaitable[None]]
# Clocks of two replicas may differ by this much: a market loaded less than this after the
# other replica's last renewal is loaded again all the same.
CLOCK_SKEW = 5.0


class LeaseLost(Exception):
    pass


class Leases:
    """Lease and checkpoint items of the meta table, written conditionally."""

    def __init__(
        self,
        client: DynamoDBClient,
        settings: Settings,
        owner: str,
        ttl: float,
        outage: Outage | None = None,
    ) -> None:
        self.client = client
        self.table = settings.table(META)
        self.owner = owner
        self.ttl = ttl
        self.outage = outage

    @staticmethod
    def key(shard: str) -> dict[str, Any]:
        return {"k": {"S": f"lease#{shard}"}, "n": {"N": "0"}}

    async def get(self, shard: str) -> dict[str, Any]:
        async with translate("GetItem lease", self.outage):
            response = await self.client.get_item(
                TableName=self.table, Key=self.key(shard), ConsistentRead=True
            )
        return dict(response.get("Item", {}))

    async def _update(
        self, shard: str, update: str, condition: str, values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A conditional UpdateItem of the shard's lease: the lease as it was before, or None
        when the condition failed."""
        try:
            async with translate(f"lease {shard}", self.outage):
                response = await self.client.update_item(
                    TableName=self.table,
                    Key=self.key(shard),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#o": "owner", "#u": "until"},
                    ExpressionAttributeValues={":me": {"S": self.owner}, **values},
                    ReturnValues="ALL_OLD",
                )
        except AlreadyDone:
            return None
        return dict(response.get("Attributes", {}))

    def handed_over(self, lease: dict[str, Any]) -> float | None:
        """When another replica last renewed this lease (plus the clock skew allowed), if
        another replica held it; None when it was free or ours."""
        owner = lease.get("owner", {}).get("S")
        if owner is None or owner == self.owner:
            return None
        return float(lease["until"]["N"]) - self.ttl + CLOCK_SKEW

    def _expiry(self) -> dict[str, Any]:
        return {"N": repr(time.time() + self.ttl)}

    async def acquire(self, shard: str) -> dict[str, Any] | None:
        """Take the shard's lease; the lease as it was (None: another replica holds it)."""
        return await self._update(
            shard,
            "SET #o = :me, #u = :until",
            # Free, expired, or already ours — and never a shard read to its end.
            "(attribute_not_exists(#o) OR #o = :me OR #u < :now) AND attribute_not_exists(done)",
            {":until": self._expiry(), ":now": {"N": repr(time.time())}},
        )

    async def renew(self, shard: str, checkpoint: str | None = None, done: bool = False) -> None:
        """Extend the lease (and move the checkpoint); LeaseLost if another owner has it."""
        sets = ["#u = :until"]
        values: dict[str, Any] = {":until": self._expiry()}
        if checkpoint is not None:
            sets.append("checkpoint = :seq")
            values[":seq"] = {"S": checkpoint}
        if done:
            sets.append("done = :done")
            values[":done"] = {"BOOL": True}
        if await self._update(shard, "SET " + ", ".join(sets), "#o = :me", values) is None:
            raise LeaseLost(shard)

    async def release(self, shard: str) -> None:
        """Let another replica take the shard at once (it resumes from the checkpoint)."""
        with contextlib.suppress(StoreError):
            await self._update(shard, "SET #u = :zero", "#o = :me", {":zero": {"N": "0"}})


class StreamReader:
    """Every shard of the stream, each read by a task of its own while this replica holds its
    lease. DynamoDB's outages are waited out, never fatal: discovery retries each second, a
    reader backs off and retries the same call (and the same batch: handling is idempotent)."""

    def __init__(
        self,
        store: Store,
        streams: DynamoDBStreamsClient,
        owner: str,
        handle: Handler,
        lease_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.streams = streams
        self.outage = store.outage
        self.handle = handle
        self.leases = Leases(store.client, store.settings, owner, lease_seconds, store.outage)
        self.readers: dict[str, asyncio.Task[None]] = {}
        self.records = 0
        self.rounds = 0  # shard assignment rounds done (one a second)
        # Shards whose last read was a full page: the stream has more for them right now.
        self.behind: set[str] = set()
        # Per shard, the last record whose effect is in the processor's state (a checkpoint
        # saves these with it) ...
        self.positions: dict[str, str] = {}
        # ... and, after a restart from a checkpoint, where to resume each shard it names.
        self.resume: dict[str, str] = {}
        self.stream = ""  # the stream's ARN, once known (the alerter's start-up finds it)

    @property
    def caught_up(self) -> bool:
        """Every shard read was read to its head at its last read (a page not full)."""
        return not self.behind

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        async with translate(what, self.outage):
            return await request

    async def _shards(self, arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": arn}
        while True:
            answer = await self._call("DescribeStream", self.streams.describe_stream(**request))
            description = answer["StreamDescription"]
            shards.extend(dict(s) for s in description["Shards"])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop`; StoreMisconfigured (no table, no stream, no access) ends it."""
        arn = self.stream or await until_answered(self.store.stream_arn, stop)
        if arn is None:
            return
        self.stream = arn
        log.info("reading stream %s as %s", arn.rsplit("/", 1)[-1], self.leases.owner)
        while not stop.is_set():
            try:
                await self._assign(arn, stop)
            except StoreUnavailable:
                pass  # the outage is logged once, by the store's Outage; discovery retries
            except StoreMisconfigured:
                raise
            except StoreError as exc:
                log.warning("shard discovery failed (%s); trying again shortly", exc)
            for shard, task in list(self.readers.items()):
                if task.done():
                    del self.readers[shard]
            self.rounds += 1
            await sleep_unless(stop, 1.0)
        await asyncio.gather(*self.readers.values(), return_exceptions=True)

    async def _assign(self, arn: str, stop: asyncio.Event) -> None:
        shards = await self._shards(arn)
        ids = {s["ShardId"] for s in shards}
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self.readers:
                continue
            parent = shard.get("ParentShardId")
            parent_lease = await self.leases.get(parent) if parent and parent in ids else {}
            if parent_lease and not parent_lease.get("done"):
                continue  # parents first: a market's records stay in order
            previous = await self.leases.acquire(shard_id)
            if previous is not None:
                checkpoint = previous.get("checkpoint", {}).get("S")
                # Read before by another replica (this shard, or its parent): what it handled
                # is missing from windows this replica loaded earlier.
                since = self.leases.handed_over(previous) or self.leases.handed_over(parent_lease)
                resumed = not since and shard_id in self.resume
                if resumed:
                    # The state checkpoint holds exactly the records up to here: replay the
                    # rest, even those the lease's checkpoint says were handled.
                    checkpoint = self.resume[shard_id]
                log.info(
                    "took shard %s (from %s%s)%s",
                    shard_id,
                    checkpoint or "its start",
                    ", the state checkpoint's position" if resumed else "",
                    "; another replica read it before: its markets' windows are reloaded"
                    if since
                    else "",
                )
                self.readers[shard_id] = asyncio.create_task(
                    self._read(arn, shard, checkpoint, since, stop), name=f"shard {shard_id}"
                )

    async def _iterator(self, arn: str, shard: str, checkpoint: str | None) -> str:
        request: dict[str, Any] = {"StreamArn": arn, "ShardId": shard}
        if checkpoint:
            request |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
        else:
            request["ShardIteratorType"] = "TRIM_HORIZON"
        answer = await self._call("GetShardIterator", self.streams.get_shard_iterator(**request))
        return str(answer["ShardIterator"])

    async def _read(
        self,
        arn: str,
        shard: dict[str, Any],
        checkpoint: str | None,
        since: float | None,
        stop: asyncio.Event,
    ) -> None:
        shard_id = shard["ShardId"]
        idle = Backoff(base=0.02, cap=0.2, jitter=0.0)
        renewed = time.monotonic()

        def fresh_iterator() -> Awaitable[str]:
            return self._iterator(arn, shard_id, checkpoint)

        def records(iterator: str) -> Awaitable[Any]:
            return self._call(
                "GetRecords",
                self.streams.get_records(ShardIterator=iterator, Limit=RECORDS_PER_READ),
            )

        try:
            iterator = await until_answered(fresh_iterator, stop)
            while iterator and not stop.is_set():
                try:
                    response = await until_answered(partial(records, iterator), stop)
                except StoreError as exc:
                    if exc.code not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                        raise
                    # Expired (an outage outlasted it): start again after the checkpoint.
                    # Trimmed (also DynamoDB Local's answer on a fresh table): from the oldest
                    # record kept.
                    log.info("shard %s: %s; new iterator", shard_id, exc.code)
                    if exc.code == "TrimmedDataAccessException":
                        checkpoint = None
                    iterator = await until_answered(fresh_iterator, stop)
                    continue
                if response is None:
                    break  # stopped while DynamoDB was away
                found = response.get("Records", [])
                if len(found) >= RECORDS_PER_READ:
                    self.behind.add(shard_id)
                else:
                    self.behind.discard(shard_id)
                if found:
                    changes = [parse(dict(r)) for r in found]
                    if await until_answered(partial(self._handled, changes, since), stop) is None:
                        break  # stopped before the batch was handled: read again next start
                    self.records += len(found)
                    checkpoint = found[-1]["dynamodb"]["SequenceNumber"]
                    self.positions[shard_id] = checkpoint
                    await until_answered(partial(self.leases.renew, shard_id, checkpoint), stop)
                    renewed = time.monotonic()
                    idle.reset()
                iterator = response.get("NextShardIterator")
                if iterator is None and not await until_answered(
                    lambda: self._closed(arn, shard_id), stop
                ):
                    # DynamoDB Local sometimes omits the iterator of an open shard.
                    iterator = await until_answered(fresh_iterator, stop)
                if not found:
                    if time.monotonic() - renewed > self.leases.ttl / 3:
                        await until_answered(lambda: self.leases.renew(shard_id), stop)
                        renewed = time.monotonic()
                    await sleep_unless(stop, idle.next_delay())
            if iterator is None and not stop.is_set():
                await self.leases.renew(shard_id, checkpoint, done=True)
                log.info("shard %s read to its end", shard_id)
            else:
                await self.leases.release(shard_id)
        except LeaseLost:
            log.warning("lost the lease of shard %s to another reader; stopping it", shard_id)
        except StoreMisconfigured:
            raise
        except Exception:
            log.exception("reading shard %s failed; it will be taken up again", shard_id)
            await self.leases.release(shard_id)
        finally:
            self.behind.discard(shard_id)

    async def _handled(self, changes: list[Change], since: float | None) -> bool:
        await self.handle(changes, since)
        return True

    async def _closed(self, arn: str, shard_id: str) -> bool:
        for shard in await self._shards(arn):
            if shard["ShardId"] == shard_id:
                return "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
        return True  # gone from the stream: nothing more to read
