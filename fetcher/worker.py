"""The fetcher's lifecycle: each tick, every source concurrently, then a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from common.db import Store
from common.errors import StoreError, StoreMisconfigured
from common.figures import FiguresDoc
from common.figures_store import FiguresStore
from common.lifecycle import touch_alive
from common.models import Market, Point
from common.settings import Settings
from fetcher.aggregate import Aggregator, points_of
from fetcher.backfill import Backfill
from fetcher.errors import Maintenance, SourceError, UnknownShape
from fetcher.http import get_json
from fetcher.ingest import Batch, Ingest
from fetcher.schedule import ticks
from fetcher.sources import Parsed, Source
from fetcher.spool import Spool

log = logging.getLogger(__name__)
# Seconds a stopping fetcher spends writing its buffer. Whoever stops it must wait longer:
# `tracker up` and docker-compose.yml give every service 30 s before SIGKILL.
FLUSH_GRACE = 20.0


# How long a source in maintenance is left alone before it is asked again.
MAINTENANCE_PAUSE = 60.0


@dataclass
class SourceFigures:
    fetched: int = 0  # markets in the last good answer
    skipped: int = 0  # rows skipped in the last answer (bad data)
    ignored: int = 0  # rows or keys ignored in the last answer (not markets by design)
    failures: int = 0  # ticks this source could not fetch, since start
    failed: Counter[str] = field(default_factory=Counter)  # those failures by reason
    last_error: str = ""
    paused_until: float = 0.0  # time.time() a maintenance pause ends
    shapes: set[str] = field(default_factory=set)  # unknown shapes already logged
    figures: dict[str, float] = field(default_factory=dict)  # from the last answer

    def fail(self, reason: str, message: str) -> None:
        self.failures += 1
        self.failed[reason] += 1
        self.last_error = f"{reason}: {message}"[:300]


@dataclass
class Figures:
    ticks: int = 0
    missed: int = 0
    last_duration: float = 0.0
    sources: dict[str, SourceFigures] = field(default_factory=dict)
    across: FiguresDoc | None = None  # the last tick's cross-market figures
    across_seconds: float = 0.0  # CPU time they took


class Fetcher:
    def __init__(
        self, settings: Settings, store: Store, http: aiohttp.ClientSession, sources: list[Source]
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.sources = sources
        # One batch per source and tick, and one of cross-market figures.
        self.ingest = Ingest(
            store, settings.buffer_ticks * (len(sources) + 1), Spool(settings.spool_file)
        )
        self.figures = Figures(sources={s.id: SourceFigures() for s in sources})
        self.markets: dict[str, list[Market]] = {}  # each source's markets in its last answer
        self.aggregator = Aggregator(
            settings.stale_after, settings.outlier_percent, settings.figures_state_file
        )
        self.figures_store = FiguresStore(store)
        self.publishing: asyncio.Task[None] | None = None

    async def run_tick(self, t: int) -> bool:
        """Fetch tick `t` from every source and queue its points; True if every source answered."""
        started = time.monotonic()
        # Leave a little of the interval for the write: never overrun the next tick.
        budget = (
            t
            + self.settings.fetch_interval
            - time.time()
            - min(1.0, 0.1 * self.settings.fetch_interval)
        )
        deadline = started + max(budget, 0.5)
        results = await asyncio.gather(*(self._source_tick(s, t, deadline) for s in self.sources))
        answered = [parsed for parsed in results if parsed is not None]
        self.across(t, answered)
        self.figures.ticks += 1
        self.figures.last_duration = time.monotonic() - started
        across = self.figures.across
        log.info(
            "tick %d done in %.2f s: %s; %d pairs, %d assets in %.3f s; buffer %d point(s)",
            t,
            self.figures.last_duration,
            ", ".join(f"{s.id} {self.figures.sources[s.id].fetched}" for s in self.sources),
            len(across.pairs) if across else 0,
            len(across.assets) if across else 0,
            self.figures.across_seconds,
            self.ingest.depth,
        )
        return len(answered) == len(results)

    def across(self, t: int, answered: list[Parsed]) -> None:
        """Tick t's cross-market figures from the sources that answered in time: queued as
        points (exchanges `all` and `asset`) and published as the document `/pairs` reads."""
        started = time.process_time()
        try:
            doc = self.aggregator.tick(
                t,
                [q for parsed in answered for q in parsed.quotes],
                [q for parsed in answered for q in parsed.shadows],
            )
        except Exception:  # a bug here must not cost the tick its markets' points
            log.exception("tick %d: cross-market figures failed; the markets are stored", t)
            return
        self.figures.across_seconds = time.process_time() - started
        self.figures.across = doc
        points = points_of(doc)
        if points:
            self.ingest.submit(Batch("figures", t, points))
        if doc.mismatches:
            worst = doc.mismatches[0]
            log.warning(
                "tick %d: %d market(s) differ by more than 1 %% between the direct fetch and the "
                "Cryptowatch feed; the most: %s %s direct, %s through the feed",
                t,
                doc.differ,
                worst.market,
                f"{worst.direct:.10g}",
                f"{worst.feed:.10g}",
            )
        if self.publishing is None or self.publishing.done():
            self.publishing = asyncio.create_task(self.publish(doc))

    async def publish(self, doc: FiguresDoc) -> None:
        try:
            await self.figures_store.put(doc)
        except StoreError as exc:  # the next tick publishes its own
            log.warning("tick %d: cross-market figures not published: %s", doc.t, exc)

    async def _source_tick(self, source: Source, t: int, deadline: float) -> Parsed | None:
        """Fetch and queue one source's tick, and return its answer; None (a failed fetch,
        counted by reason) when its answer is an error, of an unknown shape, or empty where it
        had markets before."""
        figures = self.figures.sources[source.id]
        if time.time() < figures.paused_until:
            figures.fail("maintenance", "paused: the exchange said it is in maintenance")
            return None
        try:
            payload = await source.fetch(
                lambda path: get_json(
                    self.http,
                    source.base_url + path,
                    deadline,
                    self.settings.fetch_timeout,
                    source=source.id,
                )
            )
            parsed = source.parse(payload)
        except Maintenance as exc:
            figures.fail(exc.reason, str(exc))
            figures.paused_until = time.time() + MAINTENANCE_PAUSE
            log.warning(
                "%s: in maintenance (%s); not asked again for %.0f s",
                source.id,
                exc,
                MAINTENANCE_PAUSE,
            )
            return None
        except UnknownShape as exc:
            figures.fail(exc.reason, str(exc))
            if exc.sample[:40] not in figures.shapes:  # once per shape, with a sample
                figures.shapes.add(exc.sample[:40])
                log.error("%s: tick %d: an answer of unknown shape: %s", source.id, t, exc)
            return None
        except SourceError as exc:
            figures.fail(exc.reason, str(exc))
            log.error(
                "%s: tick %d not fetched: %s; next try at tick %d",
                source.id,
                t,
                exc,
                t + self.settings.fetch_interval,
            )
            return None
        except Exception as exc:
            figures.fail("bug", repr(exc))
            log.exception("%s: tick %d failed unexpectedly; next try next tick", source.id, t)
            return None
        if figures.paused_until:
            figures.paused_until = 0.0
            log.info("%s: answering again after its maintenance", source.id)
        had = len(self.markets.get(source.id, []))
        if not parsed.quotes and had:
            figures.fail("empty", f"no market in the answer; the last one had {had}")
            log.error(
                "%s: tick %d: the answer held no market (the last one had %d); counted as "
                "a failed fetch",
                source.id,
                t,
                had,
            )
            return None
        figures.fetched = len(parsed.quotes)
        figures.skipped = sum(parsed.skipped.values())
        figures.ignored = sum(parsed.ignored.values())
        figures.figures = dict(parsed.figures)
        if parsed.skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in Counter(parsed.skipped).most_common())
            log.warning("%s: tick %d: skipped %s", source.id, t, reasons)
        if parsed.ignored:
            reasons = ", ".join(f"{n} {why}" for why, n in Counter(parsed.ignored).most_common())
            log.debug("%s: tick %d: ignored %s", source.id, t, reasons)
        self.markets[source.id] = [q.market for q in parsed.quotes]
        points = [Point(q.market, t, q.price, q.volume) for q in parsed.quotes]
        self.ingest.submit(Batch(source.id, t, points))
        return parsed

    async def fetch_once(self, t: int) -> bool:
        """`fetch --once`: one tick (after what the spool held), written before returning; True
        when all of it is stored."""
        self.ingest.resume()
        fetched = await self.run_tick(t)
        if self.publishing is not None:
            await self.publishing
        return await self.ingest.drain() and fetched

    async def heartbeat(self) -> None:
        fields: dict[str, float | int | str] = {
            "at": time.time(),
            "newest_tick": self.ingest.newest_written,
            "ticks": self.figures.ticks,
            "missed_ticks": self.figures.missed,
            "tick_seconds": round(self.figures.last_duration, 4),
            "buffer_points": self.ingest.depth,
            "dropped_points": self.ingest.dropped_points,
            "written_points": self.ingest.written_points,
        }
        fields |= self.store.outage.figures()
        across = self.figures.across
        if across is not None:
            fields |= {
                "across.tick": across.t,
                "across.pairs": len(across.pairs),
                "across.assets": len(across.assets),
                "across.seconds": round(self.figures.across_seconds, 4),
            }
        for name, f in self.figures.sources.items():
            fields |= {
                f"{name}.newest": self.ingest.newest_by_source.get(name, 0),
                f"{name}.fetched": f.fetched,
                f"{name}.written": self.ingest.written_by_source[name],
                f"{name}.skipped": f.skipped,
                f"{name}.ignored": f.ignored,
                f"{name}.failures": f.failures,
            }
            fields |= {f"{name}.failed.{why}": n for why, n in f.failed.items()}
            fields |= {f"{name}.{figure}": value for figure, value in f.figures.items()}
            if f.last_error:
                fields[f"{name}.last_error"] = f.last_error
        try:
            await self.store.put_heartbeat("fetcher", fields)
        except StoreError as exc:
            log.debug("heartbeat not written: %s", exc)

    async def main(self, stop: asyncio.Event) -> None:
        log.info(
            "fetching %s every %d s",
            ", ".join(s.id for s in self.sources),
            self.settings.fetch_interval,
        )
        touch_alive("fetcher", self.settings.worker_id)
        self.ingest.resume()
        writer = asyncio.create_task(self.ingest.run(stop))
        heartbeat: asyncio.Task[None] | None = None
        previous = await self.previous_newest()
        catch_up: asyncio.Task[None] | None = None
        try:
            async for tick in ticks(self.settings.fetch_interval, stop):
                touch_alive("fetcher", self.settings.worker_id)
                if writer.done():
                    writer.result()  # the writer ended: StoreMisconfigured ends the fetcher
                self.figures.missed += tick.missed
                await self.run_tick(tick.t)
                if catch_up is None and previous is not None:
                    catch_up = asyncio.create_task(self.catch_up(previous, tick.t))
                # Never let a slow or absent DynamoDB hold up the schedule.
                if heartbeat is None or heartbeat.done():
                    heartbeat = asyncio.create_task(self.heartbeat())
        finally:
            stop.set()
            self.ingest.wake()
            if catch_up is not None and not catch_up.done():
                catch_up.cancel()
                log.info("backfill of the restart gap stopped (it resumes at the next start)")
            await writer
            if heartbeat:
                await heartbeat
            if self.publishing is not None:
                await self.publishing

    async def previous_newest(self) -> int | None:
        """The newest tick the previous run wrote, when a restart gap should be refilled."""
        if not self.settings.backfill_max_gap or all(s.id != "bitfinex" for s in self.sources):
            return None
        try:
            beat = await self.store.get_heartbeat("fetcher")
        except StoreError as exc:
            log.warning("restart gap not known (%s): no backfill", exc)
            return None
        newest = (beat or {}).get("newest_tick")
        return int(newest) if isinstance(newest, float) and newest > 0 else None

    async def catch_up(self, previous: int, first: int) -> None:
        """Refill, from Bitfinex candles, the ticks between the last run and this one."""
        start = max(previous, first - self.settings.backfill_max_gap)
        end = first - self.settings.fetch_interval
        markets = self.markets.get("bitfinex", [])
        if end <= start or not markets:
            return
        log.info(
            "backfilling the restart gap (%d s) for %d Bitfinex market(s) from candles",
            end - start,
            len(markets),
        )
        summary = await Backfill(self.settings, self.store, self.http).run(markets, start, end)
        log.info(
            "restart gap refilled: %d point(s) written for %d tick(s) missing",
            summary.written,
            summary.missing,
        )

    async def close(self, grace: float = FLUSH_GRACE) -> None:
        """Flush what is buffered, oldest first, while DynamoDB takes it and within `grace`
        seconds; say what could not be written."""
        if not self.ingest.buffer:
            log.info("stopped: buffer empty, every fetched point is written")
            return
        log.info("flushing %d buffered point(s) before exit", self.ingest.depth)
        with contextlib.suppress(TimeoutError, StoreMisconfigured):
            await asyncio.wait_for(self.ingest.drain(), grace)
        if self.ingest.buffer:
            log.error(
                "exiting with %d point(s) of %d tick(s) not written (DynamoDB did not take them "
                "within %.0f s): kept in %s, written first at the next start",
                self.ingest.depth,
                len({b.t for b in self.ingest.buffer}),
                grace,
                self.settings.spool_file,
            )
        else:
            log.info("stopped: buffer flushed, every fetched point is written")
