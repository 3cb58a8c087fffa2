"""The alerter on DynamoDB Local: stream → rule → one alert record → one webhook POST."""

from __future__ import annotations

import time

from common.db import Store
from common.models import Market, Point
from common.ticks import tick_floor
from tests.helpers.points import steady
from tests.helpers.progress import settled
from tests.helpers.running import running_alerter, running_deliverer, webhook_receiver
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

BTC = Market("bitfinex", "btcusd")
ETH = Market("bitfinex", "ethusd")


async def test_spike_gives_one_alert_record_and_one_post(dynamodb_url: str) -> None:
    """A 3.5× spike alerts once (record + webhook); a 2.9× move and a repeat do not."""
    async with webhook_receiver() as (posts, url):
        settings = make_settings(
            dynamodb_url,
            fetch_interval=1,
            alert_window=60,
            rank_window=600,
            notify_urls=[url],
            alert_cooldown=30,
        )
        async with tables(settings) as store:
            now = tick_floor(time.time(), 1)
            await store.put_points(steady(BTC, now, 60) + steady(ETH, now, 60))
            async with running_alerter(settings) as alerter, running_deliverer(settings):
                await wait_for(lambda: alerter.processor.handled >= 120, 20, "history handled")
                await store.put_points([Point(ETH, now, 100.25 * 2.9, 10.0)])
                await store.put_points([Point(BTC, now, 100.25 * 3.5, 10.0)])
                await wait_for(lambda: len(posts) >= 1, 20, "webhook POST")
                # A second spike inside the cooldown stays silent.
                await store.put_points([Point(BTC, now + 1, 100.25 * 4, 10.0)])
                await wait_for(lambda: alerter.processor.handled >= 123, 20, "spikes handled")
                await settled(store)  # any wrong second POST has been sent by now
            alerts = await store.list_alerts()
    assert [a.id for a in alerts] == [f"bitfinex:btcusd:{now}"]
    assert alerts[0].ratio > 3.4 and alerts[0].points == 60
    assert len(posts) == 1
    assert "BTCUSD" in posts[0]["title"] and "3.50×" in posts[0]["message"]


async def test_redelivered_record_makes_no_second_alert(dynamodb_url: str) -> None:
    """Handling the same stream changes again (a replay after a crash) adds nothing."""
    async with webhook_receiver() as (posts, url):
        settings = make_settings(
            dynamodb_url, fetch_interval=1, alert_window=60, rank_window=600, notify_urls=[url]
        )
        async with tables(settings) as store:
            now = tick_floor(time.time(), 1)
            await store.put_points([*steady(BTC, now, 60), Point(BTC, now, 400.0, 1.0)])
            for _ in range(2):  # a crash before the checkpoint: everything read again
                async with running_alerter(settings) as alerter, running_deliverer(settings):
                    await wait_for(lambda a=alerter: a.processor.handled >= 61, 20, "handled")
                    await wait_for(lambda: len(posts) >= 1, 20, "delivered")
                # Forget the checkpoints (the leases' and the state's) so the next alerter
                # reads the stream from its start.
                settings.state_file.unlink()
                await store.client.delete_item(
                    TableName=settings.table("meta"), Key={"k": {"S": "board"}, "n": {"N": "0"}}
                )
                leases = await store.client.scan(TableName=settings.table("meta"))
                for item in leases["Items"]:
                    if item["k"]["S"].startswith("lease#"):
                        await store.client.delete_item(
                            TableName=settings.table("meta"), Key={"k": item["k"], "n": item["n"]}
                        )
            alerts = await store.list_alerts()
    assert len(alerts) == 1
    assert len(posts) == 1
    assert len(posts) == 1


async def test_alerts_listed_newest_first_and_filtered(store: Store) -> None:
    """GET /alerts' queries: newest first, by exchange, by market, since a time."""
    from common.models import Alert

    made = [
        Alert(BTC, 1000, 300.0, 100.0, 60),
        Alert(ETH, 2000, 30.0, 10.0, 60),
        Alert(Market("kraken", "btcusd"), 3000, 3.0, 1.0, 60),
    ]
    for alert in made:
        await store.put_alert(alert)
    assert [a.t for a in await store.list_alerts()] == [3000, 2000, 1000]
    assert [a.t for a in await store.list_alerts(exchange="bitfinex")] == [2000, 1000]
    assert [a.t for a in await store.list_alerts(symbol="btcusd")] == [3000, 1000]
    assert [a.t for a in await store.list_alerts("bitfinex", "btcusd")] == [1000]
    assert [a.t for a in await store.list_alerts(since=1500, limit=1)] == [3000]
