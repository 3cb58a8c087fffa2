"""Least privilege, measured: each component runs as a real process against its own recording
proxy in front of DynamoDB Local, doing everything it does in production (the fetcher with a
restart backfill, the alerter through a spike and its notification, the service answering every
read path). The (action, resource) pairs it sent must be exactly what its role in
deploy/aws/tracker.yaml grants, apart from grants listed in UNEXERCISED with their reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from typing import Any

import httpx
import pytest

from common import aws
from common.db import Store
from common.schema import init_db
from common.sealed import new_secret_key
from common.ticks import tick_floor
from common.users_store import UsersStore
from tests.deploy.template import TABLE_RESOURCES, resources
from tests.faultproxy import FaultProxy, fault_proxy
from tests.helpers.exchange import control
from tests.helpers.processes import TRACKER, Processes, ticks_done
from tests.helpers.receiver import receiving
from tests.helpers.running import webhook_receiver
from tests.helpers.tables import make_settings
from tests.helpers.waiting import wait_for
from tracker import dynamodb_local

pytestmark = pytest.mark.slow

Grant = tuple[str, str]  # (IAM action, resource: "points", "alerts/index", "points/stream", …)
ROLES = {
    "fetcher": "FetcherRole",
    "alerter": "AlerterRole",
    "service": "ApiRole",
    "notifier": "NotifierRole",
}
# Granted, but not reached in this test; each with why the code needs it.
UNEXERCISED: dict[str, dict[Grant, str]] = {
    "fetcher": {
        ("dynamodb:DeleteItem", "meta"): "the figures' parts beyond a document that shrank",
    },
    "alerter": {
        ("dynamodb:DeleteItem", "meta"): "a board that shrank, or a replica's gone for good",
        ("dynamodb:GetItem", "meta"): "a child shard's parent lease, after a shard split",
    },
    "service": {},
    "notifier": {
        ("dynamodb:UpdateItem", "channels"): "a channel disabled by its receiver's 410",
    },
}
# A transaction is authorised item by item, by the action each item performs.
TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
TABLE_OF = {logical: name for name, logical in TABLE_RESOURCES.items()}


def sent(proxy: FaultProxy, prefix: str) -> set[Grant]:
    """The IAM (action, resource) pairs behind the requests that went through `proxy`."""

    def table(name: str) -> str:
        assert name.startswith(prefix + "-"), name
        return name.removeprefix(prefix + "-")

    grants: set[Grant] = set()
    for target, raw in proxy.requests:
        service, _, operation = target.partition(".")
        body = json.loads(raw or b"{}")
        if service.startswith("DynamoDBStreams"):
            grants.add((f"dynamodb:{operation}", "points/stream"))
        elif operation == "TransactWriteItems":
            for item in body["TransactItems"]:
                ((kind, request),) = item.items()
                grants.add((f"dynamodb:{TRANSACT[kind]}", table(request["TableName"])))
        elif operation in ("BatchWriteItem", "BatchGetItem"):
            grants |= {(f"dynamodb:{operation}", table(name)) for name in body["RequestItems"]}
        else:
            where = table(body["TableName"]) + ("/index" if "IndexName" in body else "")
            grants.add((f"dynamodb:{operation}", where))
    return grants


def _resource(ref: Any) -> str:
    """`!GetAtt PointsTable.Arn` → points; `.StreamArn` → points/stream;
    `${AlertsTable.Arn}/index/*` → alerts/index."""
    if "Fn::GetAtt" in ref:
        logical, attribute = ref["Fn::GetAtt"]
        return TABLE_OF[logical] + ("/stream" if attribute == "StreamArn" else "")
    logical, rest = ref["Fn::Sub"].removeprefix("${").split(".Arn}")
    assert rest == "/index/*", ref
    return TABLE_OF[logical] + "/index"


def granted(component: str) -> set[Grant]:
    role = resources("AWS::IAM::Role")[ROLES[component]]["Properties"]
    grants: set[Grant] = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions, where = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for ref in where if isinstance(where, list) else [where]:
                    grants.add((action, _resource(ref)))
    return grants


async def _delivered(answer: Any) -> bool:
    return [d["status"] for d in (await answer)["deliveries"]] == ["delivered"]


TASKS = {
    "fetcher": "FetcherTask",
    "alerter": "AlerterTask",
    "notifier": "NotifierTask",
    "service": "ApiTask",
}


def container(component: str) -> dict[str, Any]:
    """The container definition of the component's ECS task."""
    task = resources("AWS::ECS::TaskDefinition")[TASKS[component]]
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return dict(definition)


def task_command(component: str) -> list[str]:
    """The task's command, `tracker …` run as this checkout's `python -m tracker …`."""
    command = container(component)["Command"]
    assert command[0] == "tracker", command
    return [*TRACKER, *command[1:]]


def read(request: str | urllib.request.Request) -> bytes:
    with urllib.request.urlopen(request, timeout=5) as response:
        return bytes(response.read())


def status(url: str) -> int:
    try:
        read(url)
        return 200
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection
            return int(exc.code)


async def statuses(base: str, paths: list[str]) -> dict[str, int]:
    return {path: await asyncio.to_thread(status, base + path) for path in paths}


async def test_each_role_grants_exactly_the_calls_its_component_makes(
    dynamodb_url: str, processes: Processes
) -> None:
    settings = make_settings(dynamodb_url)
    prefix = settings.table_prefix
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        # The last run's heartbeat, two minutes old: the fetcher starts as after a restart,
        # reads it, and refills the gap from candles (whole minutes: the gap spans two).
        beat: dict[str, float | int | str] = {"at": time.time() - 120}
        beat["newest_tick"] = tick_floor(time.time(), 60) - 120
        await Store(client, settings).put_heartbeat("fetcher", beat)
    demo_port = dynamodb_local.free_port()
    demo = f"http://127.0.0.1:{demo_port}"
    api_port = dynamodb_local.free_port()
    api = f"http://127.0.0.1:{api_port}"
    async with (
        fault_proxy(dynamodb_url, record=True) as fetcher,
        fault_proxy(dynamodb_url, record=True) as alerter,
        fault_proxy(dynamodb_url, record=True) as service,
        fault_proxy(dynamodb_url, record=True) as notifier,
        webhook_receiver() as (posts, hook),
        receiving("127.0.0.2") as users_hook,
        httpx.AsyncClient(base_url=api, timeout=10) as http,
    ):
        env = {
            "TRACKER_TABLE_PREFIX": prefix,
            "TRACKER_FETCH_INTERVAL": "1",
            "TRACKER_ALERT_WINDOW": "10",
            "TRACKER_RANK_WINDOW": "30",  # sealed points leave the window: read back
            "TRACKER_ALERT_COOLDOWN": "600",
            "TRACKER_BITFINEX_URL": demo,
            "TRACKER_BACKFILL_MAX_GAP": "600",
            "TRACKER_WORKER_ID": f"iam-{prefix}",
            "TRACKER_PORT": str(api_port),
            "TRACKER_SECRET_KEY": new_secret_key(),
            "TRACKER_ALLOW_TARGETS": "127.0.0.2/32",
        }
        processes.start(
            "demo", [*TRACKER, "demo-exchange", "--port", str(demo_port), "--pairs", "3"], env
        )
        dynamodb_local.wait_for_port(demo_port)
        via = {
            name: {"AWS_ENDPOINT_URL": p.url}
            for name, p in (
                ("fetcher", fetcher),
                ("alerter", alerter),
                ("service", service),
                ("notifier", notifier),
            )
        }
        # Each process runs its task definition's own command.
        hooked = {"TRACKER_NOTIFY_URLS": hook}
        processes.start("fetcher", task_command("fetcher"), env | via["fetcher"])
        processes.start("alerter", task_command("alerter"), env | via["alerter"] | hooked)
        processes.start("service", task_command("service"), env | via["service"])
        processes.start("notifier", task_command("notifier"), env | via["notifier"] | hooked)
        dynamodb_local.wait_for_port(api_port)
        async with aws.dynamodb(settings) as client:  # the operator's own calls: no role
            users = UsersStore(Store(client, settings))
            await users.add_user("alice")
            _, key = await users.create_key("alice")
        auth = {"Authorization": f"Bearer {key}"}

        # The restart gap refilled in the background; then the price a rule is set against.
        await wait_for(
            lambda: "restart gap refilled" in processes.log("fetcher"), 90, "the backfill"
        )
        rows = (await asyncio.to_thread(control, demo, "/control/served"))["tickers"]
        price = next(float(r[7]) for r in rows if isinstance(r, list) and r[0] == "tBTCUSD")

        # A user's channels and rules, every /me route: the rule fires with the spike.
        async def me(method: str, path: str, body: Any = None) -> Any:
            answer = await http.request(method, path, headers=auth, json=body)
            assert answer.status_code < 300, (method, path, answer.text)
            return answer.json() if answer.content else None

        hook_id = (
            await me(
                "POST", "/me/channels", {"name": "h", "kind": "webhook", "url": users_hook.url}
            )
        )["id"]
        spare = (
            await me(
                "POST",
                "/me/channels",
                {"name": "s", "kind": "ntfy", "topic": "t", "server": users_hook.url},
            )
        )["id"]
        rule = {"name": "r", "exchange": "bitfinex", "symbol": "btcusd", "channels": [hook_id]}
        rule_id = (
            await me(
                "POST",
                "/me/rules",
                rule | {"condition": {"kind": "crosses_above", "level": 2 * price}},
            )
        )["id"]
        other = (
            await me(
                "POST",
                "/me/rules",
                rule | {"condition": {"kind": "change", "percent": 50, "window": 60}},
            )
        )["id"]
        await me("PATCH", f"/me/rules/{other}", {"paused": True})
        await me("DELETE", f"/me/rules/{other}")
        await me("POST", f"/me/channels/{spare}/test")
        await me("DELETE", f"/me/channels/{spare}")
        for path in (
            "/me",
            "/me/rules",
            f"/me/rules/{rule_id}",
            "/me/channels",
            f"/me/channels/{hook_id}",
        ):
            await me("GET", path)
        await wait_for(lambda: "1 user rule" in processes.log("alerter"), 20, "the rule followed")

        # Ten seconds of steady prices (the alert window), then a spike: an alert, stored and
        # posted.
        def ticks_since_refill() -> int:
            log = processes.log("fetcher")
            return len(ticks_done(log[log.index("restart gap refilled") :]))

        await wait_for(lambda: ticks_since_refill() >= 11, 60, "ten seconds of steady prices")
        spike = {"symbol": "btcusd", "price": 4 * price}
        await asyncio.to_thread(control, demo, "/control/price", spike)
        await wait_for(lambda: bool(posts), 30, "the alert's notification")
        await wait_for(lambda: bool(users_hook.got), 30, "the user's webhook")
        assert (await me("GET", "/me/alerts"))["alerts"][0]["rule"] == rule_id
        await wait_for(
            lambda: _delivered(me("GET", "/me/deliveries")), 20, "the user's delivery recorded"
        )

        # Every read path of the service.
        paths = [
            "/",
            "/readyz",
            "/status",
            "/metrics",
            "/symbols",
            "/rank",
            "/symbols/btcusd?exchange=bitfinex",
            "/symbols/btcusd/rank?exchange=bitfinex",
            "/symbols/btcusd/history?exchange=bitfinex",
            "/alerts",
            "/alerts?exchange=bitfinex&symbol=btcusd",
            "/symbols/nosuch?exchange=bitfinex",
        ]

        async def first_answers() -> bool:
            return await statuses(api, paths[:6]) == dict.fromkeys(paths[:6], 200)

        await wait_for(first_answers, 30, "the first routes answer 200")
        answers = await statuses(api, paths)
        assert answers == dict.fromkeys(paths[:-1], 200) | {paths[-1]: 404}, answers

        # The template's health checks, run as ECS runs them, each in its component's
        # environment, answer healthy; the load balancer's health check path is a route.
        async def healthcheck(component: str) -> subprocess.CompletedProcess[str]:
            check = container(component)["HealthCheck"]["Command"]
            assert check[:3] == ["CMD", "tracker", "healthcheck"], check
            return await asyncio.to_thread(
                subprocess.run,
                [*TRACKER, *check[2:]],
                env=os.environ | env | via[component],
                capture_output=True,
                text=True,
                timeout=60,
            )

        runs = await asyncio.gather(*map(healthcheck, TASKS))
        for component, run in zip(TASKS, runs, strict=True):
            assert run.returncode == 0, (component, run.stdout, run.stderr)
        (targets,) = resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
        assert await statuses(api, [targets["Properties"]["HealthCheckPath"]]) == {"/readyz": 200}

        # A clean stop, through the proxies: what each writes on its way out is a call too.
        names = list(ROLES)
        stops = [asyncio.to_thread(processes.stop, name) for name in names]
        assert dict(zip(names, await asyncio.gather(*stops), strict=True)) == dict.fromkeys(
            names, 0
        )

    calls = {
        "fetcher": sent(fetcher, prefix),
        "alerter": sent(alerter, prefix),
        "service": sent(service, prefix),
        "notifier": sent(notifier, prefix),
    }
    denied = {c: sorted(made - granted(c)) for c, made in calls.items() if made - granted(c)}
    spare = {
        c: sorted(granted(c) - made)
        for c, made in calls.items()
        if granted(c) - made != set(UNEXERCISED[c])
    }
    for component, made in calls.items():
        print(f"\n{component}: {', '.join(sorted(f'{a[9:]} {r}' for a, r in made))}")
    assert not denied, f"would be denied on AWS: {denied}"
    assert not spare, f"granted beyond what the code calls (and UNEXERCISED lists): {spare}"
