"""A key's record is read at most once in KEY_CACHE seconds, and a key in steady use is read
again beside its requests, never before one, while a revocation still takes effect within
KEY_CACHE. The users' store here is a stand-in whose read waits until the test lets it go;
the real one is tested through the app in tests/integration/test_me_api.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

import pytest

from common import apikeys
from common.users_store import KeyRecord
from service.auth import KEY_CACHE, Keys, Unauthorized


class Users:
    def __init__(self, record: KeyRecord) -> None:
        self.record = record
        self.reads = 0
        self.go = asyncio.Event()
        self.go.set()

    async def get_key(self, key_id: str) -> KeyRecord | None:
        self.reads += 1
        await self.go.wait()
        return self.record

    async def touch_key(self, key_id: str, at: float) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("service.auth.time.monotonic", lambda: now[0])
    return now


async def test_a_key_in_steady_use_never_waits_and_a_revocation_still_lands(
    clock: list[float],
) -> None:
    key_id, key = apikeys.new_key()
    users = Users(KeyRecord(key_id, "alice", apikeys.digest(key), 0.0))
    keys = Keys(cast(Any, users), rate_limit=10_000)
    header = f"Bearer {key}"

    assert (await keys.check(header)).user == "alice" and users.reads == 1
    clock[0] += KEY_CACHE * 0.4
    await keys.check(header)
    assert users.reads == 1 and not keys.reading, "read again while fresh"

    users.go.clear()  # the store is slow now: a request that waited for it would hang
    clock[0] += KEY_CACHE * 0.2
    checked = await asyncio.wait_for(keys.check(header), 1)
    assert checked.user == "alice" and key_id in keys.reading
    await asyncio.sleep(0)
    assert users.reads == 2, "the record is read beside the request"

    users.record = replace(users.record, revoked=1.0)  # revoked meanwhile
    users.go.set()
    await asyncio.gather(*keys.reading.values())
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.check(header)

    clock[0] += KEY_CACHE  # nothing renewed it since: the request reads it itself
    with pytest.raises(Unauthorized, match="revoked"):
        await keys.check(header)
    assert users.reads == 3 and not keys.reading
    await keys.close()
