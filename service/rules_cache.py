"""A user's rules as last read, answered again while their rules version says nothing changed.

Listing 100 rules is a Query of 100 items; checking the user's version is one GetItem. Every
write to a user's rules counts the version up after it has landed, whoever makes it (this
replica, another one, the alerter's progress: common/rules_store.py), and the version is read
before the rules, so rules held under a version are never older than it. A writer that crashed
between its write and its bump is the one case the version misses; rules are therefore held
`MAX_AGE` seconds at most.

A version read is good for `FRESH` seconds: a user polling their rules is answered from what is
held, and once half of that has passed the version is read again beside the answers, not before
one, so a poll never waits for DynamoDB while nothing changes (a GetItem under load costs more
than the rest of the answer). A write this replica makes drops the user's rules at once
(`RulesStore.bumped`); one made by another replica or by the alerter shows within `FRESH`.

The listing's answer is held beside the rules it was made of (`listing`), until their rules
change or one of them expires (a rule's state in the answer depends on the time only through
its expiry).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from common.errors import StoreError
from common.rules import Rule
from common.rules_store import RulesStore

log = logging.getLogger(__name__)

MAX_AGE = 60.0
FRESH = 1.0  # seconds: how long a version read stands
USERS_HELD = 1024


class Held(NamedTuple):
    version: int
    read: float  # monotonic: when the rules were read
    checked: float  # monotonic: when the version they stand for was last asked
    rules: tuple[Rule, ...]
    body: bytes | None = None  # the listing as answered, while the time is before `until`
    until: float = 0.0  # wall clock


def next_expiry(rules: tuple[Rule, ...], now: float) -> float:
    """The first time from `now` at which one of the rules' states may change by itself."""
    ends = (r.terms.expires for r in rules if r.terms.expires is not None)
    return min((end for end in ends if end >= now), default=math.inf)


class RulesCache:
    def __init__(
        self,
        rules: RulesStore,
        users: int = USERS_HELD,
        max_age: float = MAX_AGE,
        fresh: float = FRESH,
    ):
        self.rules = rules
        self.users = users
        self.max_age = max_age
        self.fresh = fresh
        self.held: OrderedDict[str, Held] = OrderedDict()
        self.reads = 0  # rules Queries made (the version reads are not counted)
        self.checking: dict[str, asyncio.Task[None]] = {}
        rules.bumped.append(self.forget)

    def forget(self, user: str) -> None:
        """Drop what is held of the user's rules: they were just written here."""
        self.held.pop(user, None)

    async def of_user(self, user: str) -> tuple[Rule, ...]:
        """The user's rules, oldest first, as stored now (or, written by another replica,
        within `fresh` seconds)."""
        now = time.monotonic()
        held = self.held.get(user)
        if held is not None and now - held.read < self.max_age and now - held.checked < self.fresh:
            if now - held.checked >= self.fresh / 2 and user not in self.checking:
                self.checking[user] = asyncio.create_task(self._check(user))
            self.held.move_to_end(user)
            return held.rules
        return await self._read(user)

    async def _read(self, user: str) -> tuple[Rule, ...]:
        asked = time.monotonic()
        version = await self.rules.version(user)
        held = self.held.get(user)
        if held is not None and held.version == version and asked - held.read < self.max_age:
            self._hold(user, held._replace(checked=asked))
            return held.rules
        rules = tuple(await self.rules.of_user(user))
        self.reads += 1
        self._hold(user, Held(version, asked, asked, rules))
        return rules

    def _hold(self, user: str, held: Held) -> None:
        self.held[user] = held
        self.held.move_to_end(user)
        while len(self.held) > self.users:
            self.held.popitem(last=False)

    async def _check(self, user: str) -> None:
        """Read the user's version beside the answers: the rules held stand for another
        `fresh` seconds if it is theirs, and are dropped if not."""
        asked = time.monotonic()
        try:
            version = await self.rules.version(user)
        except StoreError as exc:  # the next answer after `fresh` reads, and says so
            log.debug("rules version of %s not checked: %s", user, exc)
            return
        finally:
            del self.checking[user]
        held = self.held.get(user)
        if held is None:
            return
        if held.version == version:
            self.held[user] = held._replace(checked=max(held.checked, asked))
        else:
            del self.held[user]

    async def close(self) -> None:
        """Stop the version reads in flight (before the client they use closes)."""
        tasks = list(self.checking.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def listing(self, user: str, render: Callable[[tuple[Rule, ...], float], bytes]) -> bytes:
        """The user's rules as `render` answers them at the time given, made again only when
        the rules changed (or were read again) or one of them expired since."""
        rules = await self.of_user(user)
        held = self.held.get(user)  # as `of_user` left it: nothing was awaited since
        now = time.time()
        if held is not None and held.body is not None and now < held.until:
            return held.body
        body = render(rules, now)
        if held is not None:
            self.held[user] = held._replace(body=body, until=next_expiry(rules, now))
        return body
