"""The Lambda entry point on DynamoDB Local, and shard leases between two alerter replicas."""

from __future__ import annotations

import time

from alerter.lambda_handler import handle_event
from alerter.stream import Leases
from common.models import Market, Point
from common.ticks import tick_floor
from tests.faultproxy import fault_proxy
from tests.helpers.points import steady
from tests.helpers.running import running_alerter, running_deliverer, webhook_receiver
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

BTC = Market("bitfinex", "btcusd")


def lambda_record(point: Point, sequence: int) -> dict[str, object]:
    """A stream record in the shape AWS Lambda hands a function (times as numbers)."""
    image = {"m": {"S": point.market.key}, "t": {"N": str(point.t)}, "p": {"N": repr(point.price)}}
    return {
        "eventID": str(sequence),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": point.t,
            "Keys": {k: image[k] for k in ("m", "t")},
            "NewImage": image,
            "SequenceNumber": str(sequence),
            "StreamViewType": "NEW_IMAGE",
        },
    }


async def test_lambda_handler_alerts_once_reading_the_window_from_the_table(
    dynamodb_url: str,
) -> None:
    """Without a board, the handler reads each point's window from the table; a batch
    delivered twice (Lambda retries) still makes one alert and one notification."""
    async with webhook_receiver() as (posts, hook):
        settings = make_settings(
            dynamodb_url, fetch_interval=1, alert_window=60, notify_urls=[hook]
        )
        async with tables(settings) as store:
            now = tick_floor(time.time(), 1)
            await store.put_points(steady(BTC, now, 60))
            spike = Point(BTC, now, 500.0, None)
            await store.put_points([spike])
            event = {"Records": [lambda_record(spike, 1)]}
            for _ in range(2):
                assert await handle_event(event, settings) == {"batchItemFailures": []}
            async with running_deliverer(settings):
                await wait_for(lambda: len(posts) >= 1, 20, "the notification sent")
            alerts = await store.list_alerts()
    assert [a.id for a in alerts] == [f"bitfinex:btcusd:{now}"] and alerts[0].points == 60
    assert len(posts) == 1


async def test_lambda_handler_names_the_first_record_it_could_not_handle(
    dynamodb_url: str,
) -> None:
    """A record that does not parse: the answer names it (Lambda retries from there), the
    records before it are handled (their alert recorded), those after it are left for the
    retry. DynamoDB away: the batch is tried record by record and the first is named."""
    settings = make_settings(dynamodb_url, fetch_interval=1, alert_window=60)
    eth = Market("bitfinex", "ethusd")
    async with tables(settings) as store:
        now = tick_floor(time.time(), 1)
        await store.put_points(steady(BTC, now, 60) + steady(eth, now, 60))
        broken = lambda_record(Point(BTC, now + 1, 1.0, None), 2)
        del broken["dynamodb"]["NewImage"]["p"]  # type: ignore[index]
        event = {
            "Records": [
                lambda_record(Point(BTC, now, 500.0, None), 1),
                broken,
                lambda_record(Point(eth, now, 500.0, None), 3),
            ]
        }
        assert await handle_event(event, settings) == {
            "batchItemFailures": [{"itemIdentifier": "2"}]
        }
        assert [a.market for a in await store.list_alerts()] == [BTC]

    async with fault_proxy(dynamodb_url) as proxy:
        await proxy.down()
        away = settings.model_copy(update={"aws_endpoint_url": proxy.url})
        event = {"Records": [lambda_record(Point(eth, now, 500.0, None), 4)]}
        answer = await handle_event(event, away)
        assert answer == {"batchItemFailures": [{"itemIdentifier": "4"}]}


async def test_two_replicas_never_read_one_shard_at_once(dynamodb_url: str) -> None:
    """The second replica cannot take a shard the first holds; it takes it over from the
    checkpoint once the first stops, and what was written meanwhile is handled once."""
    settings = make_settings(dynamodb_url, fetch_interval=1, alert_window=60, rank_window=600)
    other = settings.model_copy(update={"worker_id": "replica-b"})
    async with tables(settings) as store:
        now = tick_floor(time.time(), 1)
        await store.put_points(steady(BTC, now - 100, 30))
        async with running_alerter(settings) as first:
            await wait_for(lambda: first.processor.handled >= 30, 20, "first replica reading")
            async with running_alerter(other) as second:
                await wait_for(lambda: second.reader.rounds >= 3, 30, "3 assignment rounds")
                assert second.reader.readers == {}
                assert second.processor.handled == 0
                shard = next(iter(first.reader.readers))
                assert await Leases(store.client, other, "replica-b", 10).acquire(shard) is None
        # The first has stopped and released its lease; a new replica takes over.
        await store.put_points(steady(Market("bitfinex", "ethusd"), now, 10))
        async with running_alerter(other) as second:
            await wait_for(lambda: second.processor.handled >= 10, 20, "takeover")
            # One more record, behind all the others in the shard: once it is handled, a
            # read from the shard's start would have handled the first 30 again too.
            await store.put_points([Point(Market("bitfinex", "ethusd"), now + 5, 100.0, 1.0)])
            await wait_for(lambda: second.processor.handled >= 11, 20, "the last record")
            assert second.processor.handled == 11  # resumed after the checkpoint, not from 0
            await wait_for(lambda: second.published > 0, 10, "second replica's board")
        # Each replica published its own board; the service reads them merged.
        heads = await store.board_heads()
        assert {h.owner for h in heads} == {settings.worker_id, "replica-b"}
        merged = await store.get_snapshot()
        assert merged is not None
        assert {r.market for r in merged.rows} == {BTC, Market("bitfinex", "ethusd")}
        assert merged.by_market()[BTC].t == now - 101
