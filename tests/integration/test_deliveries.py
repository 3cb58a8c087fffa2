"""The outbox on DynamoDB Local, sent by the delivery worker in-process: the house rule's
notifications through a receiver that fails first, a user's signed webhook retried after a
429's Retry-After, given up at TRACKER_DELIVERY_MAX_AGE, suppressed over the hourly limit,
and at most PER_HOST sends in flight to one host."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from alerter.notify import HouseOutbox
from common.aws import dynamodb
from common.channels import Channel, new_signing_secret
from common.channels_store import ChannelsStore, new_channel_id
from common.conditions import CrossesAbove, Progress, Terms
from common.db import Store
from common.deliveries_store import DeliveriesStore, Fire, UserAlert
from common.messages import rule_payload
from common.models import Alert, Market
from common.rules import Rule
from common.rules_store import RulesStore, new_rule_id
from common.schema import init_db
from common.sealed import Sealer, new_secret_key
from common.senders import PER_HOST
from common.settings import Settings
from tests.helpers.receiver import Receiver, receiving
from tests.helpers.running import running_deliverer
from tests.helpers.tables import make_settings
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
MARKET = Market("bitfinex", "btcusd")


async def delivery(store: Store, alert_id: str, channel: str) -> dict[str, Any]:
    from common.attrs import dump, load

    response = await store.client.get_item(
        TableName=store.settings.table("deliveries"),
        Key=dump({"a": alert_id, "c": channel}),
        ConsistentRead=True,
    )
    return load(response.get("Item", {}))


@pytest.fixture
async def rig(dynamodb_url: str) -> AsyncIterator[tuple[Settings, Store, Receiver]]:
    async with receiving("127.0.0.2") as receiver:
        settings = make_settings(
            dynamodb_url,
            secret_key=new_secret_key(),
            allow_targets=["127.0.0.2/32"],
            notify_urls=[receiver.url.replace("http://", "json://")],
            delivery_max_age=30,
            max_notifications=3,
        )
        async with dynamodb(settings) as client:
            await init_db(client, settings)
            yield settings, Store(client, settings), receiver


def crossed(rule_id: str, t: int, value: float, level: float) -> UserAlert:
    """Alice's alert of a crosses_above rule on bitfinex:btcusd."""
    condition = {"kind": "crosses_above", "level": level}
    return UserAlert(rule_id, "alice", "bitfinex", "btcusd", "price", t, value, level, condition)


async def user_alerts(
    settings: Settings, store: Store, url: str, n: int
) -> tuple[Channel, list[str]]:
    """A user's webhook channel and rule, and `n` alerts of it with their deliveries."""
    channel = Channel(
        new_channel_id(),
        "alice",
        "hook",
        "webhook",
        {"url": url},
        time.time(),
        None,
        new_signing_secret(),
    )
    await ChannelsStore(store, Sealer(settings.sealing_key())).put(channel)
    rule = Rule(
        new_rule_id(),
        "alice",
        "r",
        MARKET,
        "price",
        CrossesAbove(1.0),
        Terms("rearm", 0, 0),
        (channel.id,),
        time.time(),
    )
    rule = await RulesStore(store).put(rule)
    ids = []
    for i in range(n):
        t = 1_800_000_000 + i
        alert = crossed(rule.id, t, 2.0, 1.0)
        progress = Progress("fired", i + 1, t, t)
        await DeliveriesStore(store).record(
            alert, rule, progress, [channel.id], rule_payload(alert.public(), rule.id, rule.name)
        )
        ids.append(alert.id)
    return channel, ids


async def test_many_alerts_are_recorded_together_and_a_recorded_one_is_not_again(
    rig: Any,
) -> None:
    """A crash tick's alerts: 120 rules fire at one point, recorded in transactions of many
    alerts each; those recorded already (a record delivered again) come back False, the others
    True, and every alert has its delivery and its rule's progress. The delivery worker then
    claims the burst in transactions and sends the hourly limit's worth, once each."""
    settings, store, receiver = rig
    deliveries = DeliveriesStore(store)
    channel, _ = await user_alerts(settings, store, receiver.url, 0)
    t = 1_800_000_000
    fires = []
    for i in range(120):
        rule = Rule(
            new_rule_id(),
            "alice",
            f"r{i}",
            MARKET,
            "price",
            CrossesAbove(1.0 + i),
            Terms("once", 0, 0),
            (channel.id,),
            0.0,
        )
        rule = await RulesStore(store).put(rule)
        alert = crossed(rule.id, t, 500.0, 1.0 + i)
        payload = rule_payload(alert.public(), rule.id, rule.name)
        fires.append(Fire(alert, rule, Progress("done", 1, t, t), [channel.id], payload))
    before = [fires[3], fires[77]]
    assert await deliveries.record_all(before) == [True, True]
    assert await deliveries.record_all(fires) == [i not in (3, 77) for i in range(120)]
    for fire in fires:
        assert (await delivery(store, fire.alert.id, channel.id))["status"] == "pending"
        assert (await RulesStore(store).get("alice", fire.rule.id)).progress.state == "done"
    assert await deliveries.record_all(fires[:5]) == [False] * 5

    # A burst: claimed in transactions, counted against the hourly limit (3) in one write.
    async def settled() -> bool:
        statuses = [(await delivery(store, f.alert.id, channel.id))["status"] for f in fires]
        return "pending" not in statuses

    async with running_deliverer(settings):
        await wait_for(settled, 60, "every delivery settled")
    statuses = [(await delivery(store, f.alert.id, channel.id))["status"] for f in fires]
    assert statuses.count("delivered") == 3 and statuses.count("suppressed") == 117
    assert len(receiver.ids()) == len(set(receiver.ids())) == 3


async def test_a_failing_house_receiver_gets_the_alert_once_it_answers(rig: Any) -> None:
    """500, 500, then 200: delivered at the third attempt, recorded as such."""
    settings, store, receiver = rig
    receiver.answers = [500, 500]
    alert = Alert(MARKET, int(time.time()), 350.0, 100.0, 30)
    await HouseOutbox(store, settings).record(alert, fresh=True)
    async with running_deliverer(settings):
        await wait_for(lambda: len(receiver.got) >= 3, 40, "three attempts")
        await wait_for(lambda: _status(store, alert.id, "house-0", "delivered"), 20, "delivered")
    record = await delivery(store, alert.id, "house-0")
    assert record["attempts"] == 3 and "le" not in record and len(receiver.got) == 3
    assert "BTCUSD" in receiver.got[-1].body.decode()


async def _status(store: Store, alert_id: str, channel: str, status: str) -> bool:
    return (await delivery(store, alert_id, channel)).get("status") == status


async def test_a_429_is_retried_after_its_retry_after_then_signed_and_delivered(rig: Any) -> None:
    settings, store, receiver = rig
    receiver.answers = [429]
    receiver.headers = {"Retry-After": "3"}
    channel, (alert_id,) = await user_alerts(settings, store, receiver.url, 1)
    async with running_deliverer(settings):
        await wait_for(lambda: _status(store, alert_id, channel.id, "delivered"), 30, "delivered")
    assert receiver.ids() == [alert_id, alert_id]
    first, second = (float(r.headers["webhook-timestamp"]) for r in receiver.got)
    assert second - first >= 3 - 1  # the timestamp has whole seconds
    bodies = receiver.verified(channel.secret or "")
    assert bodies[-1]["type"] == "alert" and bodies[-1]["alert"]["id"] == alert_id
    assert bodies[-1]["rule"]["name"] == "r"


async def test_a_receiver_that_never_answers_2xx_is_failed_at_the_max_age(rig: Any) -> None:
    settings, store, receiver = rig
    receiver.status = 503
    channel, (alert_id,) = await user_alerts(settings, store, receiver.url, 1)
    async with running_deliverer(settings.model_copy(update={"delivery_max_age": 10})):
        await wait_for(lambda: _status(store, alert_id, channel.id, "failed"), 40, "failed")
    record = await delivery(store, alert_id, channel.id)
    assert record["attempts"] >= 2 and record["ls"] == 503 and record["le"] == "HTTP 503"
    assert "q" not in record  # out of the due index: never tried again


async def test_deliveries_beyond_the_hourly_limit_are_suppressed(rig: Any) -> None:
    settings, store, receiver = rig
    channel, ids = await user_alerts(settings, store, receiver.url, 5)
    async with running_deliverer(settings):
        for alert_id in ids:
            await wait_for(
                lambda a=alert_id: _done(store, a, channel.id), 30, f"{alert_id} settled"
            )
    statuses = [(await delivery(store, a, channel.id))["status"] for a in ids]
    assert sorted(statuses) == ["delivered"] * 3 + ["suppressed"] * 2
    assert len(receiver.got) == 3


async def _done(store: Store, alert_id: str, channel: str) -> bool:
    return (await delivery(store, alert_id, channel)).get("status") not in (None, "pending")


async def test_at_most_per_host_sends_are_in_flight_to_one_host(rig: Any) -> None:
    settings, store, receiver = rig
    receiver.pause = 1.0
    channel, ids = await user_alerts(
        settings.model_copy(update={"max_notifications": 100}), store, receiver.url, 12
    )
    async with running_deliverer(settings.model_copy(update={"max_notifications": 100})):
        for alert_id in ids:
            await wait_for(lambda a=alert_id: _done(store, a, channel.id), 60, f"{alert_id} sent")
    assert 2 <= receiver.most_in_flight <= PER_HOST
