"""Answers cached until the data changes, with ETag, Cache-Control and 304s.

Data changes when an alerter replica publishes its board. A tick's points reach the board
over a second or so (the fetcher writes in chunks; the alerter publishes several times
meanwhile), so the first board of a tick is often partial: the cache asks for the boards'
heads (one small Query) at most every `poll` seconds and re-reads the boards when one
changed. Every cached answer is tied to the board version it was built from, so a new
board invalidates them all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from common.db import Store
from common.errors import StoreError, TrackerError
from common.figures import FiguresDoc
from common.figures_store import FiguresStore
from common.models import Market
from common.snapshot import Snapshot
from common.ticks import next_tick

T = TypeVar("T")
# A board published this recently may still be filling up with its tick's points: clients
# are told to ask again in a second rather than keep it until the next tick.
SETTLE = 3.0


class Polled(Generic[T]):
    """Something read from DynamoDB and held, looked at again at most every `poll` seconds.
    While DynamoDB cannot be read what is held is kept and served; `error` says why it is not
    refreshed. Only with nothing held does a read failure reach the caller."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.poll = min(1.0, interval / 4)
        self.held: T | None = None
        self.checked = -math.inf  # monotonic time of the last look
        self.error: StoreError | None = None  # why the last look failed, if it did
        self._lock = asyncio.Lock()

    async def look(self) -> None:
        """Read what changed into `held` (a small read first, the whole only when it moved)."""
        raise NotImplementedError

    def _held(self) -> T | None:
        if self.held is None and self.error is not None:
            raise self.error
        return self.held

    async def get(self) -> T | None:
        if time.monotonic() < self.checked + self.poll:
            return self._held()
        async with self._lock:
            if time.monotonic() < self.checked + self.poll:
                return self._held()
            try:
                await self.look()
                self.error = None
            except StoreError as exc:
                self.error = exc  # keep serving what is held, if anything
            self.checked = time.monotonic()  # a dead store is asked again only after `poll`
            return self._held()


class SnapshotCache(Polled[Snapshot]):
    """The merged board, re-read when a head changes; its age stated (`Age`, `as_of`)."""

    def __init__(self, store: Store, interval: int) -> None:
        super().__init__(interval)
        self.store = store
        self.heads: tuple[tuple[int, float], ...] | None = None  # (slot, written_at) read last

    @property
    def snapshot(self) -> Snapshot | None:
        return self.held

    async def look(self) -> None:
        heads = tuple(sorted((h.slot, h.written_at) for h in await self.store.board_heads()))
        if heads != self.heads:
            self.held = await self.store.get_snapshot()
            self.heads = heads

    def age(self) -> int | None:
        """Seconds since the board held was published."""
        if self.snapshot is None:
            return None
        return max(0, int(time.time() - self.snapshot.written_at))

    def max_age(self) -> int:
        """Seconds a client may keep an answer: until the next tick, or one while the board
        may still be filling up with this tick's points."""
        now = time.time()
        if self.snapshot is not None and now - self.snapshot.written_at < SETTLE:
            return 1
        return max(0, math.ceil(next_tick(now, self.interval) - now))

    def headers(self) -> dict[str, str]:
        """`Cache-Control` for every answer built from the board, and its `Age`."""
        headers = {"Cache-Control": f"max-age={self.max_age()}"}
        age = self.age()
        if age is not None:
            headers["Age"] = str(age)
        return headers


class FiguresCache(Polled[FiguresDoc]):
    """The cross-market figures document, re-read when its head changes."""

    def __init__(self, store: FiguresStore, interval: int) -> None:
        super().__init__(interval)
        self.store = store

    @property
    def version(self) -> str:
        return self.held.version if self.held else "none"

    async def look(self) -> None:
        head = await self.store.head()
        if head is not None and head.version != self.version:
            self.held = await self.store.get() or self.held


def version(snapshot: Snapshot | None) -> str:
    """What every cached answer is tied to: a new snapshot invalidates them all."""
    return snapshot.version if snapshot else "empty"


Versioner = Callable[[Snapshot | None], str]


def per_tick(market: Market) -> Versioner:
    """What a history answer is tied to: the newest tick, and whether this market's point of
    it is in. Boards come several times a tick while its points arrive; a market's history
    changes only with its own new point, so it is read once a tick, not once a board. (A
    backfill of older ticks shows at the next tick.)"""

    def versioner(snapshot: Snapshot | None) -> str:
        if snapshot is None:
            return "empty"
        row = snapshot.by_market().get(market)
        return f"{snapshot.window_end}:{row.t if row else '-'}"

    return versioner


@dataclass
class Entry:
    version: str
    body: bytes
    etag: str
    route: object  # the matched route, so metrics label a cache hit like the request it repeats
    # What the answer is tied to (by default the whole board).
    versioner: Versioner = field(default_factory=lambda: version)
    # Brings what `versioner` reads up to date first (for answers not tied to the board).
    refresh: Callable[[], Awaitable[object]] | None = None


class ResponseCache:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        # Answers being built, by URL and version: identical requests arriving meanwhile wait
        # for the one build (one Query) instead of each starting their own.
        self.building: dict[tuple[str, str], asyncio.Future[Entry]] = {}

    @staticmethod
    def key(scope: Scope) -> str:
        return f"{scope['path']}?{scope['query_string'].decode('latin-1')}"

    @staticmethod
    def answer(entry: Entry, headers: dict[str, str], if_none_match: str | None) -> Response:
        headers = {"ETag": entry.etag, **headers}
        if if_none_match == entry.etag:
            return Response(status_code=304, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)

    async def respond(
        self,
        request: Request,
        snapshots: SnapshotCache,
        snapshot: Snapshot | None,
        build: Callable[[], Awaitable[BaseModel | bytes]],
        versioner: Versioner = version,
        refresh: Callable[[], Awaitable[object]] | None = None,
    ) -> Response:
        """The cached answer for this URL and version (by default the board's), built once if
        missing — once, too, for identical requests arriving while it is built: a model, or
        JSON already rendered where building models would cost more than the answer."""
        key = self.key(request.scope)
        entry = self.entries.get(key)
        wanted = versioner(snapshot)
        if entry is None or entry.version != wanted:
            try:
                entry = await self._build(key, wanted, build, versioner, request.scope, refresh)
            except StoreError:
                if entry is None:
                    raise  # nothing held for this question: 503
                # DynamoDB away: the last answer to this very question, its age stated.
                return self.answer(entry, snapshots.headers(), None)
        if key in self.entries:
            self.entries.move_to_end(key)
        return self.answer(entry, snapshots.headers(), request.headers.get("if-none-match"))

    async def _build(
        self,
        key: str,
        wanted: str,
        build: Callable[[], Awaitable[BaseModel | bytes]],
        versioner: Versioner,
        scope: Scope,
        refresh: Callable[[], Awaitable[object]] | None = None,
    ) -> Entry:
        pending = self.building.get((key, wanted))
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self.building[(key, wanted)] = future
        try:
            built = await build()
            body = built if isinstance(built, bytes) else built.model_dump_json().encode()
            etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            entry = Entry(wanted, body, etag, scope.get("route"), versioner, refresh)
            self.entries[key] = entry
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
            future.set_result(entry)
            return entry
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: nobody else may be waiting
            raise
        finally:
            del self.building[(key, wanted)]

    async def lookup(self, scope: Scope, snapshots: SnapshotCache) -> Response | None:
        """A still-valid cached answer for this request, without routing or validation; None
        sends the request on to the app (which also answers when the board cannot be read)."""
        entry = self.entries.get(self.key(scope))
        if entry is None:
            return None
        try:
            current = await snapshots.get()
            if entry.refresh is not None:
                await entry.refresh()
        except TrackerError:
            return None
        if entry.version != entry.versioner(current):
            return None
        scope["route"] = entry.route
        if_none_match = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None
        )
        return self.answer(entry, snapshots.headers(), if_none_match)


class CachedAnswers:
    """Answers a repeated GET straight from the response cache, in front of FastAPI's routing
    and parameter validation (what a reverse-proxy cache would do, minus the extra hop)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Set by the app's lifespan; absent before start-up completes.
        state = getattr(getattr(scope.get("app"), "state", None), "tracker", None)
        if state is not None and scope["type"] == "http" and scope["method"] == "GET":
            hit = await state.responses.lookup(scope, state.snapshots)
            if hit is not None:
                await hit(scope, receive, send)
                return
        await self.app(scope, receive, send)
