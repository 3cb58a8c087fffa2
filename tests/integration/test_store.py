"""The store on DynamoDB Local: exact round trips, idempotent ticks, stream records, init-db."""

from __future__ import annotations

import random
import subprocess
import sys
import time

from common import aws
from common.db import Store
from common.models import Market, Point
from common.schema import TABLES, TTL_ATTRIBUTE, init_db
from common.settings import Settings
from common.ticks import tick_floor
from tests.helpers.tables import make_settings, tables
from tracker import dynamodb_local

BTC = Market("bitfinex", "btcusd")
# Recent ticks: points older than the retention are expired by DynamoDB TTL, as they should be.
NOW = tick_floor(time.time(), 60)
START = NOW - 2 * 86400


def walk(market: Market, start: int, n: int, step: int = 60) -> list[Point]:
    rng = random.Random(market.key)
    price = 16_000_000.0 if "jpy" in market.symbol else 40_000.0
    points = []
    for i in range(n):
        price *= 1 + rng.gauss(0, 0.001)
        points.append(Point(market, start + i * step, price, rng.random() * 1e4 if i % 7 else None))
    return points


async def test_thousand_points_round_trip_exactly_by_time_range(store: Store) -> None:
    """1,000 points written through the store read back bit-for-bit, with start < t <= end."""
    points = walk(BTC, START, 1000)
    assert await store.put_points(points) == 1000
    got = await store.query_points(BTC, points[0].t - 1, points[-1].t)
    assert got == points
    # Boundaries: start is exclusive, end inclusive.
    inner = await store.query_points(BTC, points[100].t, points[200].t)
    assert inner == points[101:201]
    assert await store.query_points(BTC, points[-1].t, points[-1].t + 10_000) == []
    assert (await store.latest_point(BTC)) == points[-1]


async def test_same_tick_written_twice_leaves_one_point(store: Store) -> None:
    """Re-writing a tick overwrites it: one point per (market, tick), the last value wins."""
    t = NOW
    await store.put_points([Point(BTC, t, 1.0, 2.0)])
    await store.put_points([Point(BTC, t, 1.0, 2.0), Point(BTC, t, 3.0, 4.0)])
    assert await store.query_points(BTC, t - 60, t + 60) == [Point(BTC, t, 3.0, 4.0)]


async def test_every_write_appears_as_a_stream_record(store: Store, settings: Settings) -> None:
    """Each distinct point written shows up on the table's stream with its new image."""
    points = [p for i in range(5) for p in walk(Market("bitfinex", f"x{i}usd"), START, 12)]
    await store.put_points(points)
    arn = await store.stream_arn()
    seen: set[tuple[str, int]] = set()
    async with aws.streams(settings) as streams:
        shards = (await streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = (
                await streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            deadline = time.monotonic() + 10
            while iterator and len(seen) < len(points) and time.monotonic() < deadline:
                response = await streams.get_records(ShardIterator=iterator)
                for record in response["Records"]:
                    image = record["dynamodb"]["NewImage"]
                    seen.add((image["m"]["S"], int(image["t"]["N"])))
                iterator = response.get("NextShardIterator")
    assert seen == {(p.market.key, p.t) for p in points}


async def test_init_db_twice_is_a_no_op_the_second_time(dynamodb_url: str) -> None:
    """The first run creates every table and turns on TTL; the second changes nothing."""
    settings = make_settings(dynamodb_url)
    async with aws.dynamodb(settings) as client:
        first = await init_db(client, settings)
        second = await init_db(client, settings)
        ttl = await client.describe_time_to_live(TableName=settings.table("points"))
        table = (await client.describe_table(TableName=settings.table("points")))["Table"]
    assert len([c for c in first if c.startswith("created")]) == len(TABLES) == 9
    assert second == []
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"


def test_init_db_command_is_idempotent(dynamodb_url: str) -> None:
    """`tracker init-db` run twice exits 0 both times and says the second had nothing to do."""
    settings = make_settings(dynamodb_url)
    env = {"AWS_ENDPOINT_URL": dynamodb_url, "TRACKER_TABLE_PREFIX": settings.table_prefix}
    runs = [_tracker(["init-db"], env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "created table" in runs[0].stderr
    assert "nothing to do" in runs[1].stderr


def _tracker(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_data_under_dynamodb_local_data_dir_survives_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Points written to `tracker dynamodb-local --data DIR` are there after a stop and start."""
    import os

    port = dynamodb_local.free_port()
    cmd = [
        sys.executable,
        "-m",
        "tracker",
        "dynamodb-local",
        "--port",
        str(port),
        "--data",
        str(tmp_path),
    ]
    settings = Settings(aws_endpoint_url=f"http://127.0.0.1:{port}", table_prefix="keep")
    points = walk(BTC, START, 50)
    for round_ in range(2):
        process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
        )
        try:
            dynamodb_local.wait_for_port(port)
            async with tables(settings, create=False) as store:
                if round_ == 0:
                    await init_db(store.client, settings)
                    await store.put_points(points)
                else:
                    assert await init_db(store.client, settings) == []
                assert await store.query_points(BTC, 0, 2e9) == points
        finally:
            process.terminate()
            process.wait(20)


async def test_a_point_expires_its_retention_after_its_tick(dynamodb_url: str) -> None:
    """The TTL attribute DynamoDB expires by is the point's tick plus the retention, in epoch
    seconds (a slip to milliseconds, or to the write time, would keep or drop it wrongly)."""
    settings = make_settings(dynamodb_url, retention=3 * 86400)
    t = tick_floor(time.time(), 60) - 7200  # written late, as a backfill would
    async with tables(settings) as store:
        await store.put_points([Point(Market("bitfinex", "btcusd"), t, 1.0, 2.0)])
        item = await store.client.get_item(
            TableName=store.points_table, Key={"m": {"S": "bitfinex:btcusd"}, "t": {"N": str(t)}}
        )
    assert int(item["Item"][TTL_ATTRIBUTE]["N"]) == t + 3 * 86400
