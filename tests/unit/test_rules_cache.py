"""`GET /me/rules`'s answer is made once for each version of a user's rules, and made again
when the version moves or when one of the rules expires (its state in the answer changes by
itself then); a version read stands `fresh` seconds and is renewed beside the answers, never
before one, while a write made here is seen at once. The store here is a stand-in with the two
reads the cache makes; the real one is tested through the app in
tests/integration/test_me_api.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

import pytest

from common.conditions import CrossesAbove, Terms
from common.models import Market
from common.rules import Rule
from service.routes.me_rules import listing
from service.rules_cache import RulesCache, next_expiry

NOW = 1_800_000_000.0


def rule(name: str, expires: int | None = None) -> Rule:
    return Rule(
        f"rl_{name:0>16}",
        "alice",
        name,
        Market("bitfinex", "btcusd"),
        "price",
        CrossesAbove(100.0),
        Terms("rearm", 60, 0, expires),
        (),
        NOW - 600,
    )


class Rules:
    """The user's version and rules, as the store would read them, with the reads counted."""

    def __init__(self, *rules: Rule) -> None:
        self.v = 1
        self.rules = list(rules)
        self.queries = 0
        self.versions = 0
        self.bumped: list[Callable[[str], None]] = []

    async def version(self, user: str) -> int:
        self.versions += 1
        await asyncio.sleep(0)  # a read: others run meanwhile
        return self.v

    def write(self, *rules: Rule, here: bool) -> None:
        """A write to the user's rules, with its version bump (told here only when made by
        this replica)."""
        self.v, self.rules = self.v + 1, [*self.rules, *rules]
        if here:
            for tell in self.bumped:
                tell("alice")

    async def of_user(self, user: str) -> list[Rule]:
        self.queries += 1
        return list(self.rules)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The cache's clock, wall and monotonic, moved by hand."""
    now = [NOW]
    monkeypatch.setattr("service.rules_cache.time.time", lambda: now[0])
    monkeypatch.setattr("service.rules_cache.time.monotonic", lambda: now[0])
    return now


async def test_the_answer_is_made_again_only_after_a_change_or_an_expiry(
    clock: list[float],
) -> None:
    rules = Rules(rule("a", expires=int(NOW) + 30), rule("b"))
    cache = RulesCache(cast(Any, rules), fresh=3600)
    made: list[float] = []

    def render(held: tuple[Rule, ...], now: float) -> bytes:
        made.append(now)
        return listing(held, now)

    async def states() -> dict[str, str]:
        body = json.loads(await cache.listing("alice", render))
        return {r["name"]: r["state"] for r in body["rules"]}

    assert await states() == {"a": "armed", "b": "armed"}
    clock[0] += 20
    assert await states() == {"a": "armed", "b": "armed"}
    assert made == [NOW] and rules.queries == 1, "made again though nothing changed"

    rules.write(rule("c"), here=True)
    assert list(await states()) == ["a", "b", "c"]
    assert made == [NOW, NOW + 20] and rules.queries == 2

    clock[0] = NOW + 30  # the expiry itself: not yet expired
    assert (await states())["a"] == "armed"
    clock[0] = NOW + 31
    assert (await states())["a"] == "expired", "an expiry passed, the old answer kept"
    clock[0] = NOW + 50
    assert (await states())["a"] == "expired"
    assert made == [NOW, NOW + 20, NOW + 30, NOW + 31] and rules.queries == 2


def test_next_expiry_is_the_first_not_past() -> None:
    held = (rule("a", expires=int(NOW) - 5), rule("b", expires=int(NOW) + 9), rule("c"))
    assert next_expiry(held, NOW) == NOW + 9
    assert next_expiry(held, NOW + 10) == float("inf")
    assert next_expiry((), NOW) == float("inf")


async def test_a_version_read_stands_fresh_seconds_and_is_renewed_beside_the_answers(
    clock: list[float],
) -> None:
    rules = Rules(rule("a"))
    cache = RulesCache(cast(Any, rules), fresh=1.0)

    async def names() -> list[str]:
        return [r.name for r in await cache.of_user("alice")]

    assert await names() == ["a"] and (rules.versions, rules.queries) == (1, 1)
    clock[0] += 0.4
    assert await names() == ["a"] and rules.versions == 1, "read again while fresh"
    clock[0] += 0.2  # past half of it: answered as held, the version read beside
    assert await names() == ["a"] and "alice" in cache.checking and rules.versions == 1
    await asyncio.gather(*cache.checking.values())
    assert rules.versions == 2 and rules.queries == 1 and not cache.checking

    clock[0] += 0.7  # fresh from that read: answered as held; another renewal starts
    rules.write(rule("b"), here=False)  # another replica: seen once a version read says so
    assert await names() == ["a"]
    await asyncio.gather(*cache.checking.values())
    assert await names() == ["a", "b"] and rules.queries == 2

    rules.write(rule("c"), here=True)  # this replica: seen at once
    assert await names() == ["a", "b", "c"] and rules.queries == 3

    rules.write(rule("d"), here=False)
    clock[0] += 1.0  # nothing renewed it: the answer waits for the version read
    assert await names() == ["a", "b", "c", "d"] and rules.queries == 4
    assert not cache.checking
