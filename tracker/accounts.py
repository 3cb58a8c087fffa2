"""`tracker users …` and `tracker keys …`: the operator's commands for users and API keys.

A key is printed once, when it is made; only its digest is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from common.attrs import value
from common.aws import dynamodb
from common.db import Store, translate
from common.errors import AlreadyDone, NotFound, StoreError
from common.rules_store import VERSION_ID
from common.schema import CHANNELS, DELIVERIES, DELIVERIES_BY_USER, RULES, USER_ALERTS
from common.settings import Settings, load_or_exit
from common.ticks import iso
from common.users_store import UsersStore

Action = Callable[[UsersStore, argparse.Namespace], Awaitable[int]]


async def _add(users: UsersStore, args: argparse.Namespace) -> int:
    try:
        await users.add_user(args.name)
    except ValueError as exc:
        print(f"tracker users add: {exc}", file=sys.stderr)
        return 2
    except AlreadyDone:
        print(f"tracker users add: user {args.name!r} exists already", file=sys.stderr)
        return 1
    key_id, key = await users.create_key(args.name)
    print(f"user {args.name} added; its API key (id {key_id}), shown this once:")
    print(key)
    return 0


async def _list(users: UsersStore, _: argparse.Namespace) -> int:
    for user in await users.list_users():
        print(f"{user['user']}\tcreated {iso(int(user['created']))}")
    return 0


async def _purge(
    store: Store, table: str, key: dict[str, Any], names: tuple[str, ...], index: str | None = None
) -> int:
    """Delete every item a Query of `key` finds (in `index` if given); how many."""
    ((attribute, given),) = key.items()
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": f"{attribute} = :v",
        "ExpressionAttributeValues": {":v": value(given)},
    }
    if index:
        request["IndexName"] = index
    removed = 0
    async with translate(f"purge {table}", store.outage):
        while True:
            response = await store.client.query(**request)
            for item in response["Items"]:
                await store.client.delete_item(TableName=table, Key={n: item[n] for n in names})
                removed += item.get("id") != {"S": VERSION_ID}  # not a rule: their version
            if "LastEvaluatedKey" not in response:
                return removed
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def _remove(users: UsersStore, args: argparse.Namespace) -> int:
    store, settings, name = users.store, users.store.settings, args.name
    if not await users.user_exists(name):
        print(f"tracker users remove: no user {name!r}", file=sys.stderr)
        return 1
    counts = {
        "channel(s)": await _purge(store, settings.table(CHANNELS), {"u": name}, ("u", "id")),
        "rule(s)": await _purge(store, settings.table(RULES), {"u": name}, ("u", "id")),
        "alert(s)": await _purge(store, settings.table(USER_ALERTS), {"u": name}, ("u", "s")),
        "delivery(ies)": await _purge(
            store, settings.table(DELIVERIES), {"u": name}, ("a", "c"), DELIVERIES_BY_USER
        ),
    }
    keys = len(await users.list_keys(name))
    await users.remove_user(name)
    done = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"user {name} removed with {keys} key(s), {done}")
    return 0


async def _create(users: UsersStore, args: argparse.Namespace) -> int:
    try:
        key_id, key = await users.create_key(args.name)
    except NotFound as exc:
        print(f"tracker keys create: {exc}", file=sys.stderr)
        return 1
    print(f"new API key for {args.name} (id {key_id}), shown this once:")
    print(key)
    return 0


async def _keys(users: UsersStore, args: argparse.Namespace) -> int:
    for key in sorted(await users.list_keys(args.name), key=lambda k: k.created):
        used = iso(int(key.last_used)) if key.last_used else "never"
        revoked = f"\trevoked {iso(int(key.revoked))}" if key.revoked else ""
        print(f"{key.id}\tcreated {iso(int(key.created))}\tlast used {used}{revoked}")
    return 0


async def _revoke(users: UsersStore, args: argparse.Namespace) -> int:
    try:
        await users.revoke_key(args.key_id)
    except NotFound as exc:
        print(f"tracker keys revoke: {exc}", file=sys.stderr)
        return 1
    print(f"key {args.key_id} revoked: requests with it are refused within seconds")
    return 0


async def _run(settings: Settings, action: Action, args: argparse.Namespace) -> int:
    async with dynamodb(settings) as client:
        try:
            return await action(UsersStore(Store(client, settings)), args)
        except StoreError as exc:
            print(f"tracker: {exc}", file=sys.stderr)
            return 1


def command(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_run(load_or_exit("tracker"), action, args))

    return run


def add_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="add, list and remove users")
    users_sub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = users_sub.add_parser("add", help="add a user and print its first API key")
    add.add_argument("name")
    add.set_defaults(run=command(_add))
    users_sub.add_parser("list", help="list users").set_defaults(run=command(_list))
    remove = users_sub.add_parser(
        "remove", help="remove a user with its keys, channels, rules and alerts"
    )
    remove.add_argument("name")
    remove.set_defaults(run=command(_remove))

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="make another key for a user (printed once)")
    create.add_argument("name")
    create.set_defaults(run=command(_create))
    listing = keys_sub.add_parser("list", help="a user's keys: id, created, last used")
    listing.add_argument("name")
    listing.set_defaults(run=command(_keys))
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=command(_revoke))
