"""Resuming from a state checkpoint across a shard split: the checkpoint names a position in
the parent shard; the reader replays the parent from there, then the child once the parent is
done, and the figures equal a rebuild from every record. The stream is a stand-in (DynamoDB
Local never splits a shard) serving GetRecords' real shapes; the leases are real."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

from alerter.notify import HouseOutbox
from alerter.processor import Processor
from alerter.stream import StreamReader
from common.items import point_item
from common.models import Market, Point
from common.window import Board
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

MARKETS = [Market("bitfinex", f"s{i}usd") for i in range(4)]


def record(point: Point, sequence: int, event: str = "INSERT") -> dict[str, Any]:
    item = point_item(point, 86400)
    return {
        "eventName": event,
        "dynamodb": {
            "Keys": {"m": item["m"], "t": item["t"]},
            "NewImage": item,
            "SequenceNumber": f"{sequence:021d}",
        },
    }


class SplitStream:
    """A stream of two shards: `parent` (closed) and `child` (open), in GetRecords' shapes."""

    def __init__(self, parent: list[dict[str, Any]], child: list[dict[str, Any]]) -> None:
        self.shards = {"shardId-parent": parent, "shardId-child": child}
        self.served: list[str] = []
        self.past_the_end = 0  # answers with no records (the open child read to its end)

    async def describe_stream(self, **_: Any) -> dict[str, Any]:
        def numbers(records: list[dict[str, Any]]) -> list[str]:
            return [r["dynamodb"]["SequenceNumber"] for r in records]

        parent, child = (numbers(r) for r in self.shards.values())
        return {
            "StreamDescription": {
                "Shards": [
                    {
                        "ShardId": "shardId-parent",
                        "SequenceNumberRange": {
                            "StartingSequenceNumber": parent[0],
                            "EndingSequenceNumber": parent[-1],
                        },
                    },
                    {
                        "ShardId": "shardId-child",
                        "ParentShardId": "shardId-parent",
                        "SequenceNumberRange": {"StartingSequenceNumber": child[0]},
                    },
                ]
            }
        }

    async def get_shard_iterator(
        self, ShardId: str, ShardIteratorType: str, SequenceNumber: str = "", **_: Any
    ) -> dict[str, Any]:
        records = self.shards[ShardId]
        start = 0
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            start = 1 + [r["dynamodb"]["SequenceNumber"] for r in records].index(SequenceNumber)
        return {"ShardIterator": f"{ShardId}|{start}"}

    async def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, _, at = ShardIterator.partition("|")
        records = self.shards[shard][int(at) : int(at) + min(Limit, 3)]
        self.served += [r["dynamodb"]["SequenceNumber"] for r in records]
        self.past_the_end += not records
        end = int(at) + len(records)
        closed = shard == "shardId-parent" and end == len(self.shards[shard])
        answer: dict[str, Any] = {"Records": records}
        if not closed:
            answer["NextShardIterator"] = f"{shard}|{end}"
        return answer


async def test_a_checkpoint_in_the_parent_replays_the_parent_then_the_child(
    dynamodb_url: str,
) -> None:
    settings = make_settings(dynamodb_url, rank_window=3600, alert_window=600, fetch_interval=60)
    points = [
        Point(m, 1_000_000 + 60 * i, 100.0 + i + j, 5.0)
        for i in range(10)
        for j, m in enumerate(MARKETS)
    ]
    points.append(Point(MARKETS[0], 1_000_000 + 60 * 3, 77.5, None))  # an overwrite, in the child
    records = [record(p, n) for n, p in enumerate(points, start=1)]
    parent, child = records[:24], records[24:]
    position = parent[9]["dynamodb"]["SequenceNumber"]  # the checkpoint: records 1–10

    async with tables(settings) as store:
        board = Board(settings.rank_window)
        board.load(points[:10])  # the state the checkpoint holds
        processor = Processor(settings, store, HouseOutbox(store, settings), board)
        restored = {p.market for p in points[:10]}
        processor.restore(dict.fromkeys(restored), dict.fromkeys(restored, 0.0))
        stream = SplitStream(parent, child)
        reader = StreamReader(store, cast(Any, stream), settings.worker_id, processor.handle)
        reader.resume = {"shardId-parent": position}
        stop = asyncio.Event()
        task = asyncio.create_task(reader.run(stop))
        await wait_for(lambda: processor.handled == len(records) - 10, 20, "parent, then child")
        # The reader has asked past the child's end again: anything more would have come.
        await wait_for(lambda: stream.past_the_end >= 2, 20, "the child read past its end")
        stop.set()
        await task

    assert stream.served == [r["dynamodb"]["SequenceNumber"] for r in records[10:]]
    assert reader.positions == {
        "shardId-parent": parent[-1]["dynamodb"]["SequenceNumber"],
        "shardId-child": child[-1]["dynamodb"]["SequenceNumber"],
    }
    rebuild = Board(settings.rank_window)
    rebuild.load(points)
    assert [(r.market, r.t, r.price, r.volume) for r in board.rows()] == [
        (r.market, r.t, r.price, r.volume) for r in rebuild.rows()
    ]
    for ours, theirs in zip(board.rows(), rebuild.rows(), strict=True):
        for metric in ("price", "volume"):
            a, b = ours.stats[metric], theirs.stats[metric]
            assert a.count == b.count
            assert math.isclose(a.stdev or 0.0, b.stdev or 0.0, rel_tol=1e-9, abs_tol=1e-12)
