"""How fresh each component is — DynamoDB, the board, each fetcher source, the alerter — in one
reading shared by /readyz, /status and /metrics (taken at most once a second).

Readiness is not freshness: a replica that holds a board, or can read the table, can serve;
that its figures are old is reported (in words and in gauges), never by failing readiness —
a load balancer would otherwise pull every replica at once during any upstream outage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from common.assets import AGGREGATES
from common.errors import StoreError
from common.figures import FiguresDoc
from common.snapshot import Snapshot
from common.ticks import iso
from service.deps import State
from service.schemas import Component, Status

ALERTER_SILENT = 30.0  # seconds without a heartbeat (it beats every 5 s) before it is "down"
Beat = dict[str, float | str]


@dataclass(frozen=True)
class Reading:
    at: float
    store_error: str | None  # why DynamoDB did not answer, if it did not
    snapshot: Snapshot | None
    fetcher: Beat | None
    alerter: Beat | None
    limit: float  # seconds after which data counts as stale
    figures: FiguresDoc | None = None  # the newest cross-market figures
    notifier: Beat | None = None

    @property
    def ready(self) -> bool:
        """This replica can serve: DynamoDB answers, or it holds a board to answer from."""
        return self.store_error is None or self.snapshot is not None

    def sources(self) -> dict[str, float | None]:
        """Each fetcher source's newest written tick (None: none since the fetcher started)."""
        beat = self.fetcher or {}
        names = [k.removesuffix(".newest") for k in beat if k.endswith(".newest")]
        return {n: (float(beat[f"{n}.newest"]) or None) for n in names}

    def dynamodb(self) -> Component:
        if self.store_error is None:
            return Component(ok=True, detail="answering")
        held = (
            f"serving the board published {self.at - self.snapshot.written_at:.0f} s ago"
            if self.snapshot
            else "nothing held to serve"
        )
        return Component(ok=False, detail=f"unreachable ({self.store_error}); {held}")

    def board(self) -> Component:
        if self.snapshot is None or not self.snapshot.rows:
            return Component(
                ok=False,
                detail="no figures yet: no alerter has published a board with data "
                "(is `tracker alert` running? is the fetcher writing?)",
            )
        tick_age = self.at - self.snapshot.window_end
        published = self.at - self.snapshot.written_at
        across = sum(1 for r in self.snapshot.rows if r.market.exchange in AGGREGATES)
        shown = f"{len(self.snapshot.rows) - across} markets"
        if across:
            shown += f" and {across} pairs and assets"
        text = f"{shown}, newest tick {tick_age:.0f} s ago, published {published:.0f} s ago"
        if tick_age > self.limit:
            return Component(
                ok=False, detail=f"stale: {text} (limit {self.limit:.0f} s)", age_seconds=published
            )
        return Component(ok=True, detail=text, age_seconds=published)

    def fetchers(self) -> dict[str, Component]:
        if self.store_error is not None:
            return {"fetcher": Component(ok=False, detail="unknown while DynamoDB is unreachable")}
        if self.fetcher is None:
            return {
                "fetcher": Component(ok=False, detail="no heartbeat: is `tracker fetch` running?")
            }
        beat = self.fetcher
        silent = self.at - float(beat.get("at", 0))
        out: dict[str, Component] = {}
        for name, newest in self.sources().items():
            failures = int(float(beat.get(f"{name}.failures", 0)))
            fetched = int(float(beat.get(f"{name}.fetched", 0)))
            if newest is None:
                out[name] = Component(
                    ok=False,
                    detail=f"nothing written yet ({failures} failed tick(s) since start)",
                )
                continue
            age = self.at - newest
            text = (
                f"newest tick {iso(newest)}, {age:.0f} s ago; {fetched} markets in the last answer"
            )
            if failures:
                text += f"; {failures} failed tick(s) since start"
                last = beat.get(f"{name}.last_error")
                if isinstance(last, str):
                    text += f", the last: {last}"
            if silent > self.limit:
                text += f"; fetcher silent for {silent:.0f} s: is it running?"
            out[name] = Component(ok=age <= self.limit, detail=text, age_seconds=age)
        return out or {"fetcher": Component(ok=False, detail="no source reported yet")}

    def alerter_component(self) -> Component:
        if self.store_error is not None:
            return Component(ok=False, detail="unknown while DynamoDB is unreachable")
        if self.alerter is None:
            return Component(ok=False, detail="no heartbeat: is `tracker alert` running?")
        beat = self.alerter
        age = self.at - float(beat.get("at", 0))
        text = (
            f"heartbeat {age:.0f} s ago; {int(float(beat.get('records', 0)))} records, "
            f"{int(float(beat.get('alerts', 0)))} alerts since start"
        )
        if age > ALERTER_SILENT:
            return Component(ok=False, detail=f"silent: {text}: is it running?", age_seconds=age)
        return Component(ok=True, detail=text, age_seconds=age)

    def notifier_component(self) -> Component:
        if self.store_error is not None:
            return Component(ok=False, detail="unknown while DynamoDB is unreachable")
        if self.notifier is None:
            return Component(
                ok=False,
                detail="no heartbeat: is `tracker deliver` running? (alerts recorded, not sent)",
            )
        beat = self.notifier
        age = self.at - float(beat.get("at", 0))
        text = (
            f"heartbeat {age:.0f} s ago; {int(float(beat.get('delivered', 0)))} delivered, "
            f"{int(float(beat.get('retried', 0)))} retried, "
            f"{int(float(beat.get('failed', 0)))} failed since start"
        )
        if age > ALERTER_SILENT:
            return Component(ok=False, detail=f"silent: {text}: is it running?", age_seconds=age)
        return Component(ok=True, detail=text, age_seconds=age)

    def pairs(self) -> Component:
        """The cross-market figures: how many, how fresh, what could not be placed."""
        doc = self.figures
        if doc is None:
            return Component(
                ok=False, detail="no cross-market figures yet (the fetcher publishes them)"
            )
        age = self.at - doc.t
        text = f"{len(doc.pairs)} pairs, {len(doc.assets)} assets at tick {iso(doc.t)}"
        if doc.unsplit:
            text += (
                f"; {doc.unsplit} market(s) without a known base and quote, left out "
                f"({doc.unsplit_sample})"
            )
        text += f"; {doc.compared} market(s) compared across sources, {doc.differ} differ"
        if doc.differ > len(doc.mismatches):
            text += f" (the {len(doc.mismatches)} largest named in the problems)"
        if age > self.limit:
            return Component(ok=False, detail=f"stale: {text}", age_seconds=age)
        return Component(ok=True, detail=text, age_seconds=age)

    def mismatches(self) -> list[str]:
        """A market fetched directly and through the Cryptowatch feed at different prices."""
        if self.figures is None:
            return []
        return [
            f"cross-source check: {m.market} is {m.direct:.10g} fetched directly but "
            f"{m.feed:.10g} through the Cryptowatch feed ({100 * m.difference:+.2f} %)"
            for m in self.figures.mismatches
        ]

    def status(self) -> Status:
        dynamodb, board, alerter = self.dynamodb(), self.board(), self.alerter_component()
        fetcher, pairs, notifier = self.fetchers(), self.pairs(), self.notifier_component()
        named = [("DynamoDB", dynamodb), ("figures", board), ("alerter", alerter)]
        named += [("delivery worker", notifier)]
        named += [(f"fetcher {name}", c) for name, c in fetcher.items()]
        named += [("pairs", pairs)]
        return Status(
            time=iso(round(self.at)),
            dynamodb=dynamodb,
            board=board,
            fetcher=fetcher,
            alerter=alerter,
            notifier=notifier,
            pairs=pairs,
            problems=[f"{name}: {c.detail}" for name, c in named if not c.ok] + self.mismatches(),
        )


async def reading(state: State) -> Reading:
    """The current reading; a second old at most."""
    cached = state.freshness
    if cached is not None and time.monotonic() - cached[0] < 1.0:
        return cached[1]
    error: str | None = None
    beats: dict[str, Beat | None] = {"fetcher": None, "alerter": None, "notifier": None}
    try:
        await state.store.ping()
        for name in beats:
            beats[name] = await state.store.get_heartbeat(name)
    except StoreError as exc:
        error = str(exc)
    try:
        snapshot = await state.snapshots.get()
    except StoreError:
        snapshot = None
    try:
        figures = await state.figures.get()
    except StoreError:
        figures = None
    interval = state.settings.fetch_interval
    found = Reading(
        time.time(),
        error,
        snapshot,
        beats["fetcher"],
        beats["alerter"],
        2 * interval + 10,
        figures,
        beats["notifier"],
    )
    state.freshness = (time.monotonic(), found)
    return found
