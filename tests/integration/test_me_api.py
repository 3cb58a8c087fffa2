"""The `/me` API on DynamoDB Local, as a user and as an attacker would use it: two users'
keys, every route with the other's ids, no key, bad keys, refused targets, secrets that must
never come back, limits. The app runs with its real lifespan; a receiver on 127.0.0.2 (the one
network the operator allows here) stands for a user's webhook."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.routing import APIRoute

from common.apikeys import new_key
from common.aws import dynamodb
from common.conditions import Progress
from common.db import Store
from common.deliveries_store import DeliveriesStore, Fire, UserAlert
from common.errors import NotFound
from common.models import Market, Point
from common.rules_store import VERSION_ID, RulesStore, new_rule_id, rule_item
from common.schema import TABLES
from common.sealed import new_secret_key
from common.settings import Settings
from common.users_store import UsersStore
from service.auth import KEY_CACHE, caller
from service.rules_cache import FRESH, RulesCache
from tests.helpers.receiver import receiving
from tests.helpers.running import app_client
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
ALLOWED = "127.0.0.2"
CANARY = "CANARYsecret7Qx9"
MARKET = Market("bitfinex", "btcusd")


def api_routes(routes: Any) -> list[APIRoute]:
    """Every APIRoute of an app, through the routers it includes."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def me_settings(dynamodb_url: str) -> Settings:
    return make_settings(
        dynamodb_url,
        secret_key=new_secret_key(),
        allow_targets=[f"{ALLOWED}/32"],
        max_channels=3,
        rate_limit=1000,
    )


async def _users(settings: Settings, *names: str) -> dict[str, str]:
    async with tables(settings) as store:
        await store.put_points(
            [Point(MARKET, 1_800_000_000 + 60 * i, 100.0 + i, 5.0) for i in range(3)]
        )
        users = UsersStore(store)
        keys = {}
        for name in names:
            await users.add_user(name)
            keys[name] = (await users.create_key(name))[1]
        return keys


@pytest.fixture
async def two(me_settings: Settings) -> AsyncIterator[tuple[Any, dict[str, str]]]:
    keys = await _users(me_settings, "alice", "bob")
    async with app_client(me_settings) as http:
        yield http, keys


async def _webhook(http: Any, key: str, url: str, name: str = "hook") -> dict[str, Any]:
    made = await http.post(
        "/me/channels", headers=bearer(key), json={"name": name, "kind": "webhook", "url": url}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


RULE = {
    "name": "BTC over 150",
    "exchange": "bitfinex",
    "symbol": "btcusd",
    "condition": {"kind": "crosses_above", "level": 150},
    "repeat": "rearm",
    "cooldown": 60,
}


async def test_every_me_route_demands_a_key(
    me_settings: Settings, two: tuple[Any, dict[str, str]]
) -> None:
    """Each route under /me has the key dependency, and answers 401 + WWW-Authenticate to no
    key, a malformed key, a wrong checksum and an unknown key."""
    from service.app import create_app

    http, keys = two
    app = create_app(me_settings)
    private = [r for r in api_routes(app.routes) if r.path == "/me" or r.path.startswith("/me/")]
    assert len(private) >= 12

    def depends_on_caller(dependant: Any) -> bool:
        return any(d.call is caller or depends_on_caller(d) for d in dependant.dependencies)

    missing = [r.path for r in private if not depends_on_caller(r.dependant)]
    assert missing == [], f"routes without the key check: {missing}"
    good = keys["alice"]
    wrong_check = good[:-1] + ("a" if good[-1] != "a" else "b")
    unknown = new_key()[1]
    for route in private:
        path = route.path.replace("{channel_id}", "ch_0123456789abcdef").replace(
            "{rule_id}", "rl_0123456789abcdef"
        )
        for method in route.methods or ():
            for headers in (
                {},
                bearer("nonsense"),
                bearer(wrong_check),
                bearer(unknown),
                {"Authorization": good},
            ):
                answer = await http.request(method, path, headers=headers, json={})
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert good not in answer.text


async def test_a_revoked_key_is_refused_within_the_cache(
    me_settings: Settings, two: tuple[Any, dict[str, str]]
) -> None:
    http, keys = two
    assert (await http.get("/me", headers=bearer(keys["bob"]))).status_code == 200
    async with dynamodb(me_settings) as client:
        users = UsersStore(Store(client, me_settings))
        (record,) = await users.list_keys("bob")
        await users.revoke_key(record.id)

    async def refused_now() -> bool:
        answer = await http.get("/me", headers=bearer(keys["bob"]))
        return bool(answer.status_code != 200)

    await wait_for(refused_now, KEY_CACHE + 5, "a revoked key refused past the key cache")
    refused = await http.get("/me", headers=bearer(keys["bob"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    async with dynamodb(me_settings) as client:
        (record,) = await UsersStore(Store(client, me_settings)).list_keys("bob")
    assert record.revoked is not None and record.last_used is not None


async def test_another_users_ids_are_not_found_and_stay_unchanged(
    two: tuple[Any, dict[str, str]],
) -> None:
    """Bob, with Alice's ids, gets 404 on every route (as for an id that never existed),
    cannot name her channel in his rule, and changes nothing of hers."""
    http, keys = two
    alice, bob = bearer(keys["alice"]), bearer(keys["bob"])
    async with receiving(ALLOWED) as receiver:
        channel = await _webhook(http, keys["alice"], receiver.url)
        made = await http.post(
            "/me/rules", headers=alice, json=RULE | {"channels": [channel["id"]]}
        )
        assert made.status_code == 201, made.text
        rule = made.json()
        before = [(await http.get(p, headers=alice)).json() for p in ("/me/channels", "/me/rules")]
        never = {"channel": "ch_0123456789abcdef", "rule": "rl_0123456789abcdef"}
        shown = []
        for ids in ({"channel": channel["id"], "rule": rule["id"]}, never):
            attempts = [
                ("GET", f"/me/channels/{ids['channel']}", None),
                ("DELETE", f"/me/channels/{ids['channel']}", None),
                ("POST", f"/me/channels/{ids['channel']}/test", None),
                ("GET", f"/me/rules/{ids['rule']}", None),
                ("PATCH", f"/me/rules/{ids['rule']}", {"paused": True}),
                ("DELETE", f"/me/rules/{ids['rule']}", None),
            ]
            answers = []
            for method, path, body in attempts:
                answer = await http.request(method, path, headers=bob, json=body)
                assert answer.status_code == 404, (method, path, answer.text)
                text = answer.text.replace(ids["channel"], "ID").replace(ids["rule"], "ID")
                answers.append(text)
            shown.append(answers)
        assert shown[0] == shown[1], "another user's id answers unlike an unknown one"
        stolen = await http.post(
            "/me/rules", headers=bob, json=RULE | {"channels": [channel["id"]]}
        )
        assert stolen.status_code == 422 and stolen.json()["detail"][0]["loc"] == [
            "body",
            "channels[0]",
        ]
        assert receiver.got == []  # no test message was sent for Bob
        assert (await http.get(f"/me/alerts?rule={rule['id']}", headers=bob)).json() == {
            "alerts": []
        }
        after = [(await http.get(p, headers=alice)).json() for p in ("/me/channels", "/me/rules")]
        assert after == before
        assert (await http.get("/me/channels", headers=bob)).json() == {"channels": []}


TARGETS = [
    "http://127.0.0.1:8000/",
    "http://localhost/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "https://10.0.0.1/",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://user:pw@example.com/",
    "ftp://example.com/",
    "file:///etc/passwd",
]


async def test_private_targets_are_refused_at_creation(two: tuple[Any, dict[str, str]]) -> None:
    http, keys = two
    results = {}
    for url in TARGETS:
        for kind, body in (("webhook", {"url": url}), ("ntfy", {"topic": "t1", "server": url})):
            answer = await http.post(
                "/me/channels",
                headers=bearer(keys["alice"]),
                json={"name": "x", "kind": kind} | body,
            )
            assert answer.status_code == 422, (kind, url, answer.text)
            (problem,) = answer.json()["detail"]
            assert problem["loc"][-1] in ("url", "server")
            results[url] = problem["msg"]
    assert "not a public target" in results["http://2130706433/"]
    assert "169.254.169.254" in results["http://169.254.169.254/latest/meta-data/"]
    assert (await http.get("/me/channels", headers=bearer(keys["alice"]))).json() == {
        "channels": []
    }


async def test_secrets_are_shown_once_and_never_stored_or_echoed(
    me_settings: Settings, two: tuple[Any, dict[str, str]]
) -> None:
    """A canary in a webhook's path and a bot token: in the creating answer only; masked in
    every later one; absent from every item of every table; a 422 does not echo it."""
    http, keys = two
    alice = bearer(keys["alice"])
    async with receiving(ALLOWED) as receiver:
        hook = await _webhook(http, keys["alice"], f"{receiver.url}/{CANARY}")
        assert hook["secret"].startswith("whsec_") and CANARY in hook["fields"]["url"]
        token = f"123456:{CANARY}abcdefghijklmnop"
        bot = await http.post(
            "/me/channels",
            headers=alice,
            json={"name": "tg", "kind": "telegram", "bot_token": token, "chat_id": "42"},
        )
        assert bot.status_code == 201, bot.text
        bad = await http.post(
            "/me/channels",
            headers=alice,
            json={
                "name": "x",
                "kind": "webhook",
                "url": f"http://10.1.1.1/{CANARY}",
                "extra": CANARY,
            },
        )
        assert bad.status_code == 422 and CANARY not in bad.text
        malformed = await http.post(
            "/me/channels",
            headers=alice,
            json={"name": 5, "kind": "telegram", "bot_token": 7, "chat_id": CANARY * 10},
        )
        assert malformed.status_code == 422 and CANARY not in malformed.text
        later = [
            await http.get("/me/channels", headers=alice),
            await http.get(f"/me/channels/{hook['id']}", headers=alice),
        ]
        for answer in later:
            assert answer.status_code == 200
            assert (
                CANARY not in answer.text
                and hook["secret"] not in answer.text
                and "/hook" not in answer.text
            )
        assert (
            later[1].json()["target"]
            == f"http://{ALLOWED}:{receiver.url.split(':')[2].split('/')[0]}/…"
        )
    async with dynamodb(me_settings) as client:
        for spec in TABLES:
            pages = client.get_paginator("scan").paginate(TableName=me_settings.table(spec.name))
            async for page in pages:
                for item in page["Items"]:
                    text = repr(item)
                    for secret in (CANARY, hook["secret"], keys["alice"], keys["bob"]):
                        assert secret not in text, f"{secret[:6]}… stored in {spec.name}"


async def test_limits_answer_with_their_names(dynamodb_url: str) -> None:
    settings = make_settings(
        dynamodb_url,
        secret_key=new_secret_key(),
        allow_targets=[f"{ALLOWED}/32"],
        max_channels=1,
        max_rules=1,
        rate_limit=8,
    )
    keys = await _users(settings, "carol")
    carol = bearer(keys["carol"])
    async with app_client(settings) as http, receiving(ALLOWED) as receiver:
        await _webhook(http, keys["carol"], receiver.url)
        second = await http.post(
            "/me/channels",
            headers=carol,
            json={"name": "b", "kind": "webhook", "url": receiver.url},
        )
        assert second.status_code == 422 and "TRACKER_MAX_CHANNELS" in second.text
        assert (await http.post("/me/rules", headers=carol, json=RULE)).status_code == 201
        again = await http.post("/me/rules", headers=carol, json=RULE)
        assert again.status_code == 422 and "TRACKER_MAX_RULES" in again.text
        huge = await http.post(
            "/me/rules",
            content=b"{" + b" " * 20_000 + b"}",
            headers={"content-type": "application/json"} | carol,
        )
        assert huge.status_code == 413
        statuses = [(await http.get("/me", headers=carol)).status_code for _ in range(10)]
        assert 429 in statuses
        limited = await http.get("/me", headers=carol)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "TRACKER_RATE_LIMIT" in limited.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "nosuchpair"}, "symbol"),
        ({"condition": {"kind": "moon"}}, "condition.kind"),
        ({"condition": {"kind": "change", "percent": 5, "window": 999_999}}, "condition.window"),
        (
            {"condition": {"kind": "change", "percent": 5, "window": 60, "sideways": 1}},
            "condition.sideways",
        ),
        ({"condition": {"kind": "crosses_above"}}, "condition.level"),
        ({"colour": "red"}, "colour"),
        ({"expires": "2001-01-01T00:00:00Z"}, "expires"),
        ({"channels": ["ch_0123456789abcdef"]}, "channels[0]"),
    ],
)
async def test_a_bad_rule_is_a_422_naming_the_field(
    two: tuple[Any, dict[str, str]], change: dict[str, Any], field: str
) -> None:
    http, keys = two
    answer = await http.post("/me/rules", headers=bearer(keys["alice"]), json=RULE | change)
    assert answer.status_code == 422, answer.text
    assert field in [str(problem["loc"][-1]) for problem in answer.json()["detail"]], answer.text


async def test_rules_round_trip_and_patch(two: tuple[Any, dict[str, str]]) -> None:
    http, keys = two
    alice = bearer(keys["alice"])
    made = (
        await http.post("/me/rules", headers=alice, json=RULE | {"expires": "2099-01-01T00:00:00Z"})
    ).json()
    assert (
        made["state"] == "armed"
        and made["fired"] == 0
        and made["expires"] == "2099-01-01T00:00:00Z"
    )
    paused = await http.patch(f"/me/rules/{made['id']}", headers=alice, json={"paused": True})
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    listed = (await http.get("/me/rules", headers=alice)).json()["rules"]
    assert [r["id"] for r in listed] == [made["id"]]
    assert (await http.delete(f"/me/rules/{made['id']}", headers=alice)).status_code == 204
    assert (await http.get(f"/me/rules/{made['id']}", headers=alice)).status_code == 404
    me = (await http.get("/me", headers=alice)).json()
    assert me["user"] == "alice" and me["rules"] == 0 and me["limits"]["max_channels"] == 3


async def test_listed_rules_are_read_again_after_any_write_to_them(
    me_settings: Settings, two: tuple[Any, dict[str, str]]
) -> None:
    """`GET /me/rules` answers from the rules it read before while the user's rules version
    stands, and reads them again after any write to them, whoever makes it: this app (at once),
    another replica, the alerter recording a fire, the alerter rearming (within the version's
    `FRESH` seconds). A rule put straight into the table (no version bump, as no writer of ours
    does) shows which answer was which."""
    http, keys = two
    alice = bearer(keys["alice"])

    async def listed() -> dict[str, dict[str, Any]]:
        answer = await http.get("/me/rules", headers=alice)
        assert answer.status_code == 200, answer.text
        return {r["name"]: r for r in answer.json()["rules"]}

    async def shown(names: list[str]) -> dict[str, dict[str, Any]]:
        """The listing once it shows a write made elsewhere: within FRESH seconds and the
        version read that renews them."""
        seen: list[dict[str, dict[str, Any]]] = [{}]

        async def now() -> bool:
            seen[0] = await listed()
            return list(seen[0]) == names

        await wait_for(now, 2 * FRESH + 2, f"{names} listed", lambda: list(seen[0]))
        return seen[0]

    first = (await http.post("/me/rules", headers=alice, json=RULE | {"name": "one"})).json()
    async with tables(me_settings, create=False) as store:
        rules = RulesStore(store)
        one = await rules.get("alice", first["id"])

        async def unbumped(name: str) -> None:
            rule = replace(one, id=new_rule_id(), name=name, created=time.time())
            await store.client.put_item(TableName=rules.table, Item=rule_item(rule))

        aged = RulesCache(rules, max_age=0)  # holds nothing: every call reads
        assert list(await listed()) == ["one"] and await aged.of_user("alice") == (one,)
        await unbumped("two")
        assert list(await listed()) == ["one"], "read again though nothing said it changed"
        assert [r.name for r in await aged.of_user("alice")] == ["one", "two"]
        made = await http.post("/me/rules", headers=bearer(keys["bob"]), json=RULE)
        assert made.status_code == 201
        assert list(await listed()) == ["one"], "another user's write is not Alice's"

        # Another replica's write (PATCH there).
        one = await RulesStore(store).replace(replace(one, paused=True), reset=False)
        now = await shown(["one", "two"])
        assert now["one"]["paused"]

        # The alerter records a fire of "one".
        await unbumped("three")
        t = 1_800_000_000
        alert = UserAlert(one.id, "alice", "bitfinex", "btcusd", "price", t, 200.0, 150.0, {})
        fire = Fire(alert, one, Progress("fired", 1, t, t), [], {})
        assert await DeliveriesStore(store).record_all([fire]) == [True]
        now = await shown(["one", "two", "three"])
        assert now["one"]["fired"] == 1 and now["one"]["last_fired"] is not None

        # The alerter rearms it.
        await unbumped("four")
        await rules.save_progress(one, Progress("armed", 1, t, t + 60))
        now = await shown(["one", "two", "three", "four"])
        assert now["one"]["state"] == "paused"
        assert (await http.get("/me", headers=alice)).json()["rules"] == 4
        # The version item is no rule, by any route.
        assert (await http.get("/me/rules/%23version", headers=alice)).status_code in (404, 422)
        with pytest.raises(NotFound):
            await rules.get("alice", VERSION_ID)
