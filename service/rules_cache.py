"""A user's rules as last read, answered again while their rules version says nothing changed.

Listing 100 rules is a Query of 100 items; checking the user's version is one GetItem. Every
write to a user's rules counts the version up after it has landed, whoever makes it (this
replica, another one, the alerter's progress: common/rules_store.py), and the version is read
before the rules, so rules held under a version are never older than it. A writer that crashed
between its write and its bump is the one case the version misses; rules are therefore held
`MAX_AGE` seconds at most.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import NamedTuple

from common.rules import Rule
from common.rules_store import RulesStore

MAX_AGE = 60.0
USERS_HELD = 1024


class Held(NamedTuple):
    version: int
    read: float  # monotonic
    rules: tuple[Rule, ...]


class RulesCache:
    def __init__(self, rules: RulesStore, users: int = USERS_HELD, max_age: float = MAX_AGE):
        self.rules = rules
        self.users = users
        self.max_age = max_age
        self.held: OrderedDict[str, Held] = OrderedDict()
        self.reads = 0  # rules Queries made (the version reads are not counted)

    async def of_user(self, user: str) -> tuple[Rule, ...]:
        """The user's rules, oldest first, as stored now."""
        version = await self.rules.version(user)
        now = time.monotonic()
        held = self.held.get(user)
        if held is not None and held.version == version and now - held.read < self.max_age:
            self.held.move_to_end(user)
            return held.rules
        rules = tuple(await self.rules.of_user(user))
        self.reads += 1
        self.held[user] = Held(version, now, rules)
        self.held.move_to_end(user)
        while len(self.held) > self.users:
            self.held.popitem(last=False)
        return rules
