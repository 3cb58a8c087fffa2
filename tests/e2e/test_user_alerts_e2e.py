"""A user's alert end to end, with real processes and real faults: `tracker users add`, the
API (`tracker serve`), the alerter and the delivery worker (`tracker deliver`) on DynamoDB Local
behind a proxy that can go away. The user's webhook (a receiver on 127.0.0.2, the one network
the operator allows here) verifies every signature with the `standardwebhooks` package.

Each crossing of the rule's level is one alert; each must reach the webhook: normally; through
a delivery worker SIGKILLed mid-send (sent again after its lease, same `webhook-id`); through a
receiver that is down (retried until it is back, then seen once); through a 30 s DynamoDB
outage (seen once). A 410 disables the channel. No log line carries the channel's secret path,
its signing secret or the user's key."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from typing import Any

import httpx
import pytest

from common import aws
from common.db import Store
from common.models import Market, Point
from common.schema import init_db
from common.sealed import new_secret_key
from tests.faultproxy import fault_proxy
from tests.helpers.processes import TRACKER, Processes
from tests.helpers.receiver import receiving
from tests.helpers.tables import make_settings
from tests.helpers.waiting import wait_for
from tracker import dynamodb_local

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
MARKET = Market("bitfinex", "btcusd")
CANARY = "CANARYpath9Zq"
OUTAGE = 30.0  # seconds DynamoDB is away: the fault itself


async def test_each_alert_reaches_the_users_webhook_through_kills_and_outages(
    dynamodb_url: str, processes: Processes
) -> None:
    settings = make_settings(dynamodb_url, fetch_interval=1)
    port = dynamodb_local.free_port()
    api = f"http://127.0.0.1:{port}"
    async with (
        aws.dynamodb(settings) as client,
        fault_proxy(dynamodb_url) as proxy,
        receiving("127.0.0.2") as receiver,
        httpx.AsyncClient(base_url=api, timeout=10) as http,
    ):
        await init_db(client, settings)
        store = Store(client, settings)  # writes straight to DynamoDB Local, never the proxy
        env = {
            "AWS_ENDPOINT_URL": proxy.url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_FETCH_INTERVAL": "1",
            "TRACKER_SECRET_KEY": new_secret_key(),
            "TRACKER_ALLOW_TARGETS": "127.0.0.2/32",
            "TRACKER_PORT": str(port),
            "TRACKER_WORKER_ID": f"e2e-{settings.table_prefix}",
            "TRACKER_DELIVERY_MAX_AGE": "600",
            "TRACKER_RATE_LIMIT": "100000",  # the test polls fast; the limit has its own test
        }
        added = await _tracker(env, "users", "add", "alice")
        (key,) = re.findall(r"^trk_\S+$", added.stdout, re.MULTILINE)
        auth = {"Authorization": f"Bearer {key}"}
        t0 = int(time.time())
        await store.put_points(
            [Point(MARKET, t0 - 2, 100.0, 1.0), Point(MARKET, t0 - 1, 100.0, 1.0)]
        )
        for name, command in (("service", "serve"), ("alerter", "alert"), ("notifier", "deliver")):
            processes.start(name, [*TRACKER, command], env)

        async def ready() -> bool:
            try:
                return (await http.get("/me", headers=auth)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(ready, 60, "the API answering /me")
        hook = await http.post(
            "/me/channels",
            headers=auth,
            json={"name": "my hook", "kind": "webhook", "url": f"{receiver.url}/{CANARY}"},
        )
        assert hook.status_code == 201, hook.text
        channel = hook.json()
        made = await http.post(
            "/me/rules",
            headers=auth,
            json={
                "name": "BTC over 150",
                "exchange": "bitfinex",
                "symbol": "btcusd",
                "condition": {"kind": "crosses_above", "level": 150},
                "repeat": "rearm",
                "cooldown": 0,
                "channels": [channel["id"]],
            },
        )
        assert made.status_code == 201, made.text
        rule = made.json()
        await wait_for(
            lambda: (
                "1 user rule change(s) applied" in processes.log("alerter")
                or "1 user rule(s) loaded" in processes.log("alerter")
            ),
            20,
            "the alerter holding the rule",
        )
        clock = iter(range(int(time.time()) + 2, 2**40, 2))

        async def cross() -> str:
            """A point under the level, then one at 200: one crossing, one alert."""
            t = next(clock)
            await store.put_points([Point(MARKET, t, 100.0, 1.0)])
            await store.put_points([Point(MARKET, t + 1, 200.0, 1.0)])
            return f"{rule['id']}:{t + 1}"

        async def delivery(alert_id: str) -> dict[str, Any]:
            answer = await http.get("/me/deliveries", headers=auth, params={"alert": alert_id})
            assert answer.status_code == 200, answer.text
            found = answer.json()["deliveries"]
            return found[0] if found else {}

        async def status(alert_id: str, wanted: str) -> bool:
            return (await delivery(alert_id)).get("status") == wanted

        # 1. Normal: signed, delivered, visible.
        written = time.monotonic()
        first = await cross()
        await wait_for(lambda: receiver.count(first) == 1, 30, "the first webhook")
        print(f"\nwrite → webhook received: {time.monotonic() - written:.2f} s")
        await wait_for(lambda: status(first, "delivered"), 10, "the first delivery recorded")
        (body,) = receiver.verified(channel["secret"])
        assert body["type"] == "alert" and body["alert"]["id"] == first
        assert body["alert"]["value"] == 200.0 and body["alert"]["reference"] == 150
        assert body["rule"] == {"id": rule["id"], "name": "BTC over 150"}
        alerts = (await http.get("/me/alerts", headers=auth)).json()["alerts"]
        assert [a["id"] for a in alerts] == [first]

        # 2. The delivery worker killed mid-send: sent again after its lease, same webhook-id.
        receiver.pause = 60.0
        second = await cross()
        await wait_for(lambda: receiver.count(second) == 1, 30, "the second webhook arriving")
        await asyncio.to_thread(processes.kill, "notifier")
        receiver.pause = 0.0
        processes.start("notifier-2", [*TRACKER, "deliver"], env)
        await wait_for(
            lambda: status(second, "delivered"), 90, "the second delivery, after the lease"
        )
        assert receiver.count(second) == 2  # the receiver was killed mid-answer once: twice
        assert (await delivery(second))["attempts"] == 2

        # 3. The receiver down: retried until it is back, then seen once.
        await receiver.down()
        third = await cross()
        await wait_for(lambda: _attempts(delivery(third), 2), 60, "two failed attempts")
        pending = await delivery(third)
        assert pending["status"] == "pending" and pending["last_error"], pending
        await receiver.up()
        await wait_for(lambda: status(third, "delivered"), 120, "the third delivery, receiver back")
        assert receiver.count(third) == 1

        # 4. DynamoDB away for 30 s right after the point is written: seen once, after.
        fourth = await cross()
        await proxy.down()
        await asyncio.sleep(OUTAGE)
        await proxy.up()
        await wait_for(
            lambda: status(fourth, "delivered"), 120, "the fourth delivery, after the outage"
        )
        assert receiver.count(fourth) == 1

        # 5. A 410: the delivery fails for good and the channel says it is disabled.
        receiver.status = 410
        fifth = await cross()
        await wait_for(lambda: status(fifth, "failed"), 30, "the 410 settled")
        shown = (await http.get(f"/me/channels/{channel['id']}", headers=auth)).json()
        assert shown["disabled"] is True and "410" in shown["disabled_reason"]

        # The delivery worker's heartbeat, stale through the outage, is fresh again (it beats
        # every 5 s once DynamoDB answers; a loaded machine can take longer than the first).
        async def notifier() -> Any:
            worker = (await http.get("/status")).json()["notifier"]
            return worker if worker["ok"] else None

        worker = await wait_for(notifier, 60, "the notifier's heartbeat fresh in /status")
        assert " delivered, " in worker["detail"], worker
        bodies = receiver.verified(channel["secret"])
        assert {b["alert"]["id"] for b in bodies} == {first, second, third, fourth, fifth}
        for name in ("service", "alerter", "notifier-2"):
            log = processes.log(name)
            for secret in (CANARY, channel["secret"], key):
                assert secret not in log, f"{secret[:8]}… in the {name} log"

        # 6. The user removed: everything of theirs goes, and their key is refused within the
        # key cache's 5 s.
        removed = await _tracker(env, "users", "remove", "alice")
        counts = "1 key(s), 1 channel(s), 1 rule(s), 5 alert(s), 5 delivery(ies)"
        assert counts in removed.stdout, removed.stdout
        await wait_for(lambda: _refused(http, auth), 10, "the removed user's key refused")
        for table in ("channels", "rules", "user-alerts"):
            left = await client.query(
                TableName=settings.table(table),
                KeyConditionExpression="u = :u",
                ExpressionAttributeValues={":u": {"S": "alice"}},
            )
            assert left["Items"] == [], (table, left["Items"])
        for name in ("notifier-2", "alerter", "service"):  # in a thread: the proxy runs here
            assert await asyncio.to_thread(processes.stop, name) == 0, processes.log(name)


async def _refused(http: httpx.AsyncClient, auth: dict[str, str]) -> bool:
    return (await http.get("/me", headers=auth)).status_code == 401


async def _attempts(found: Any, n: int) -> bool:
    return int((await found).get("attempts", 0)) >= n


async def _tracker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`tracker *args` run to its end (in a thread: the proxy serves it from this loop)."""
    import os

    done = await asyncio.to_thread(
        subprocess.run,
        [*TRACKER, *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done
