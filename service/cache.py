"""Answers cached until the data changes, with ETag, Cache-Control and 304s.

Data changes once per tick, when the stream consumer publishes a new board snapshot. The
snapshot is re-read only when the next tick is due; every cached answer is tied to the
snapshot version it was built from, so a new tick invalidates them all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response
from pydantic import BaseModel

from common.db import Store
from common.snapshot import Snapshot
from common.ticks import next_tick

POLL = 1.0  # once a tick is due, look for its snapshot at most this often


class SnapshotCache:
    def __init__(self, store: Store, interval: int) -> None:
        self.store = store
        self.interval = interval
        self.snapshot: Snapshot | None = None
        self.valid_until = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Snapshot | None:
        if time.time() < self.valid_until:
            return self.snapshot
        async with self._lock:
            now = time.time()
            if now < self.valid_until:
                return self.snapshot
            self.snapshot = await self.store.get_snapshot()
            expected = (self.snapshot.window_end if self.snapshot else 0) + self.interval
            self.valid_until = expected if now < expected else now + min(POLL, self.interval)
            return self.snapshot

    def max_age(self) -> int:
        """Seconds until the next tick: how long a client may keep an answer."""
        now = time.time()
        return max(0, math.ceil(next_tick(now, self.interval) - now))


@dataclass
class Entry:
    version: str
    body: bytes
    etag: str


class ResponseCache:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    async def respond(
        self,
        request: Request,
        version: str,
        max_age: int,
        build: Callable[[], Awaitable[BaseModel]],
    ) -> Response:
        key = str(request.url)
        entry = self.entries.get(key)
        if entry is None or entry.version != version:
            body = (await build()).model_dump_json().encode()
            entry = Entry(
                version, body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            )
            self.entries[key] = entry
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        self.entries.move_to_end(key)
        headers = {"ETag": entry.etag, "Cache-Control": f"max-age={max_age}"}
        if request.headers.get("if-none-match") == entry.etag:
            return Response(status_code=304, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)
