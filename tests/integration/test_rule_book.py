"""The alerter's rule book on DynamoDB Local: loaded whole from the change index, followed
as the API changes rules, and restored from its checkpoint plus the changes made while the
alerter was away (a rule added, one deleted, one paused), or from the table when the
checkpoint cannot be read."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from alerter.rule_book import ABOVE
from alerter.user_rules import CHECKPOINT_FORMAT, RuleJudge
from common.conditions import CrossesAbove, Terms
from common.db import Store
from common.models import Market
from common.rules import Rule
from common.rules_store import RulesStore, new_rule_id
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
STREAM = "arn:aws:dynamodb:ddblocal:000000000000:table/alerter-test-points/stream/2026-12-02"


def rule(user: str = "alice", level: float = 100.0) -> Rule:
    market = Market("bitfinex", "btcusd")
    return Rule(
        new_rule_id(),
        user,
        "r",
        market,
        "price",
        CrossesAbove(level),
        Terms("once", 0, 0),
        (),
        time.time(),
    )


async def test_the_book_follows_changes_and_restores_from_its_checkpoint(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = RulesStore(store)
    first, second = await rules.put(rule()), await rules.put(rule(level=200.0))
    saved = tmp_path / "alerter.rules"
    judge = RuleJudge(store, None, saved)
    judge.stream = STREAM
    await judge.load()
    assert set(judge.book.rules) == {first.id, second.id}

    stop = asyncio.Event()
    follower = asyncio.create_task(judge.follow(stop))
    third = await rules.put(rule(level=300.0))
    await wait_for(lambda: third.id in judge.book.rules, 10, "a new rule followed")
    await rules.delete("alice", first.id)
    await wait_for(lambda: first.id not in judge.book.rules, 10, "a deletion followed")
    judge.save(judge.snapshot())
    stop.set()
    await follower
    # A header, then a line per rule: read back one at a time, never as one document.
    header, *lines = saved.read_text().splitlines()
    assert json.loads(header)["format"] == CHECKPOINT_FORMAT
    assert sorted(json.loads(line)["id"] for line in lines) == sorted([second.id, third.id])

    # While the alerter is away: one more rule, one deleted, one paused.
    fourth = await rules.put(rule(level=400.0))
    await rules.delete("alice", third.id)
    await rules.replace(replace(second, paused=True), reset=False)
    restored = RuleJudge(store, None, saved)
    restored.stream = STREAM
    caplog.set_level("INFO", logger="alerter.user_rules")
    await restored.load()
    assert "from its checkpoint and the changes since" in caplog.text
    assert set(restored.book.rules) == {second.id, fourth.id}
    assert restored.book.rules[second.id].paused
    above = restored.book.entry(second.market, "price").held()[ABOVE]
    assert [level for level, _ in above] == [200.0, 400.0]

    # The checkpoint is trusted for the rules it holds: one this table never had (as a file
    # left by an alerter of another table would hold) is judged, when the file names this
    # table's stream; when it names another, every rule is read from this table instead.
    header, *lines = saved.read_text().splitlines()
    ghost = json.loads(lines[0]) | {"id": new_rule_id()}
    saved.write_text("\n".join([header, *lines, json.dumps(ghost)]) + "\n")
    same = RuleJudge(store, None, saved)
    same.stream = STREAM
    await same.load()
    assert ghost["id"] in same.book.rules
    elsewhere = RuleJudge(store, None, saved)
    elsewhere.stream = STREAM.replace("alerter-test", "another")
    caplog.clear()
    await elsewhere.load()
    assert f"not used (written for stream {STREAM!r}" in caplog.text
    assert set(elsewhere.book.rules) == {second.id, fourth.id}

    # Unreadable, or in the older one-document format: every rule is read from the table.
    for unusable in ("{not json", json.dumps({"at": time.time(), "version": 0, "rules": []})):
        saved.write_text(unusable)
        caplog.clear()
        fallback = RuleJudge(store, None, saved)
        fallback.stream = STREAM
        await fallback.load()
        assert "not used" in caplog.text
        assert set(fallback.book.rules) == {second.id, fourth.id}
