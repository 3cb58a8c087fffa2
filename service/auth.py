"""Who is asking: the Bearer key of every `/me` route, checked for at most one DynamoDB read.

A key is refused before any read when its shape or checksum is wrong. A verified key (and an
unknown id) is remembered for KEY_CACHE seconds, so a burst of requests costs one read, and a
revocation takes effect on every replica within KEY_CACHE seconds; a key in steady use is read
again beside its requests before that, so none of them waits for the read. Each key may make
`TRACKER_RATE_LIMIT` requests a minute (a moving window, `limits`), answered `429` with
`Retry-After` beyond. When the key was last used is written at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from common import apikeys
from common.errors import StoreError, TrackerError
from common.users_store import KeyRecord, UsersStore

log = logging.getLogger(__name__)
KEY_CACHE = 5.0  # seconds: how long a revoked key may still be taken, at most
TOUCH_EVERY = 60.0


class Unauthorized(TrackerError):
    """401 + `WWW-Authenticate: Bearer`; the message says what was wrong, never the key."""


class RateLimited(TrackerError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    user: str
    key_id: str


class Keys:
    def __init__(self, users: UsersStore, rate_limit: int) -> None:
        self.users = users
        self.seen: dict[str, tuple[float, KeyRecord | None]] = {}
        self.touched: dict[str, float] = {}
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.rate = RateLimitItemPerMinute(rate_limit)
        self.tasks: set[asyncio.Task[None]] = set()
        self.reading: dict[str, asyncio.Task[None]] = {}  # key records read beside requests

    async def record(self, key_id: str) -> KeyRecord | None:
        """The key's record as read within KEY_CACHE seconds. Past half of that it is read
        again beside the request, not before it, so a key in steady use never waits."""
        now = time.monotonic()
        hit = self.seen.get(key_id)
        if hit is not None and now - hit[0] < KEY_CACHE:
            if now - hit[0] >= KEY_CACHE / 2 and key_id not in self.reading:
                self.reading[key_id] = asyncio.create_task(self._read_beside(key_id))
            return hit[1]
        return await self._read(key_id)

    async def _read(self, key_id: str) -> KeyRecord | None:
        asked = time.monotonic()
        record = await self.users.get_key(key_id)
        if len(self.seen) > 100_000:
            self.seen.clear()
        self.seen[key_id] = (asked, record)
        return record

    async def _read_beside(self, key_id: str) -> None:
        try:
            await self._read(key_id)
        except StoreError as exc:  # once KEY_CACHE has passed, a request reads it itself
            log.debug("key %s not read again: %s", key_id, exc)
        finally:
            del self.reading[key_id]

    async def check(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send your API key as `Authorization: Bearer trk_…`")
        try:
            key = apikeys.parse(token.strip())
        except apikeys.Malformed as exc:
            raise Unauthorized(str(exc)) from None
        record = await self.record(key.id)
        if record is None or not apikeys.matches(key, record.digest):
            raise Unauthorized("unknown API key")
        if record.revoked is not None:
            raise Unauthorized("this API key was revoked")
        if not await self.limiter.hit(self.rate, key.id):
            stats = await self.limiter.get_window_stats(self.rate, key.id)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"over TRACKER_RATE_LIMIT ({self.rate.amount} requests a minute for this key)",
                wait,
            )
        self._touch(key.id)
        return Caller(record.user, key.id)

    async def close(self) -> None:
        """Finish the last-use writes in flight and stop the reads (before the client they
        use closes)."""
        reading = list(self.reading.values())
        for task in reading:
            task.cancel()
        await asyncio.gather(*self.tasks, *reading, return_exceptions=True)

    def _touch(self, key_id: str) -> None:
        now = time.time()
        if now - self.touched.get(key_id, 0.0) < TOUCH_EVERY:
            return
        self.touched[key_id] = now

        async def write() -> None:
            try:
                await self.users.touch_key(key_id, now)
            except StoreError as exc:
                log.debug("last use of key %s not written: %s", key_id, exc)

        task = asyncio.create_task(write())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="Your API key (`tracker users add NAME` prints one), as `Bearer trk_…`",
)


async def caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Caller:
    """The dependency of every `/me` route (a test walks the routes to prove it). The
    HTTPBearer dependency only documents the scheme in OpenAPI; `Keys.check` decides, with
    its own 401s."""
    keys: Keys = request.app.state.tracker.accounts.keys
    return await keys.check(request.headers.get("authorization"))


CallerDep = Annotated[Caller, Depends(caller)]
