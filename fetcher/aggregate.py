"""Each tick's cross-market figures, computed in the fetcher from the tick it holds.

Why here: the fetcher has every source's answer for tick t in memory at one moment, before
anything is written, so a pair's figures need no read and no wait for the other markets'
stream records (the alerter sees each write, but spread over shards and replicas, with no
moment at which a tick is whole). A source that did not answer within the tick's deadline
(fetcher/worker.py) is simply not in the tick: its markets are absent, not stale.

What a figure needs from the past is kept per market: since when its price and volume are
unchanged (staleness) and whether it was an outlier at its previous point (hysteresis). That
memory is written beside the spool after every tick, so a restart neither forgets a frozen
market nor lets an outlier back in at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.assets import ASSETS_EXCHANGE, PAIRS_EXCHANGE, unknown_sample
from common.crossmarket import Observation, PairFigures, asset_figures, pair_figures
from common.figures import FiguresDoc, Mismatch
from common.models import Market, Point, Quote

log = logging.getLogger(__name__)
CROSS_CHECK = 0.01  # a direct and a feed price of one market further apart than 1 %
MAX_MISMATCHES = 20  # named in /status; the count says how many more


@dataclass(slots=True)
class Seen:
    price: float
    volume: float | None
    since: int  # first tick of the run of unchanged (price, volume)
    outlier: bool = False  # outlier or gross at its last point


@dataclass
class Aggregator:
    stale_after: int
    outlier_percent: float
    state_file: Path | None = None
    seen: dict[Market, Seen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._load()

    def observe(self, t: int, q: Quote) -> tuple[Observation, Seen]:
        """The quote as an observation of tick t, with its staleness; remembered (the memory
        of a market is updated in place: 20,000 of them each tick)."""
        seen = self.seen.get(q.market)
        if seen is None:
            seen = self.seen[q.market] = Seen(q.price, q.volume, t)
        elif seen.price != q.price or seen.volume != q.volume:
            seen.price, seen.volume, seen.since = q.price, q.volume, t
        market = q.market
        stale = t - seen.since >= self.stale_after
        return Observation(
            market.exchange, market.symbol, q.price, q.volume, stale, seen.outlier
        ), seen

    def tick(self, t: int, quotes: Sequence[Quote], shadows: Sequence[Quote]) -> FiguresDoc:
        """Tick t's figures from every source's quotes (each market once)."""
        members: dict[str, list[Quote]] = defaultdict(list)
        unsplit: list[str] = []
        for q in quotes:
            if q.split is None:
                unsplit.append(q.market.key)
            else:
                members[q.split.pair].append(q)
        pairs: dict[str, PairFigures] = {}
        for name in sorted(members):
            group = sorted(members[name], key=lambda q: q.market)
            split = group[0].split
            assert split is not None
            observed = [self.observe(t, q) for q in group]
            figures = pair_figures(
                name, split.base, split.quote, [o for o, _ in observed], self.outlier_percent
            )
            for (_, seen), c in zip(observed, figures.constituents, strict=True):
                seen.outlier = c.status in ("outlier", "gross")
            pairs[name] = figures
        assets = asset_figures(pairs)
        compared, mismatches = cross_check(quotes, shadows)
        doc = FiguresDoc(
            t=t,
            written_at=time.time(),
            stale_after=self.stale_after,
            outlier_percent=self.outlier_percent,
            pairs=tuple(pairs.values()),
            assets=tuple(assets.values()),
            unsplit=len(unsplit),
            unsplit_sample=unknown_sample(unsplit),
            mismatches=tuple(mismatches[:MAX_MISMATCHES]),
            compared=compared,
            differ=len(mismatches),
        )
        self._save(t)
        return doc

    # -- the memory across restarts -----------------------------------------------------------
    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            raw = json.loads(self.state_file.read_text())
            for key, (price, volume, since, outlier) in raw["markets"].items():
                self.seen[Market.from_key(key)] = Seen(price, volume, since, bool(outlier))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "cross-market memory %s unreadable (%s): staleness and outliers start afresh",
                self.state_file,
                exc,
            )
            self.seen.clear()
            return
        log.info("cross-market memory of %d market(s) resumed", len(self.seen))

    def _save(self, t: int) -> None:
        """Written whole, then renamed over the last: a crash leaves the old or the new."""
        if self.state_file is None:
            return
        body = {
            "t": t,
            "markets": {
                m.key: [s.price, s.volume, s.since, int(s.outlier)] for m, s in self.seen.items()
            },
        }
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.state_file.with_suffix(".partial")
            partial.write_text(json.dumps(body, separators=(",", ":")))
            os.replace(partial, self.state_file)
        except OSError as exc:
            log.warning("cross-market memory not written to %s: %s", self.state_file, exc)


def cross_check(quotes: Sequence[Quote], shadows: Sequence[Quote]) -> tuple[int, list[Mismatch]]:
    """Markets fetched directly and also through a feed: how many, and those whose prices
    differ by more than `CROSS_CHECK`, largest difference first."""
    direct = {q.market: q.price for q in quotes}
    compared, found = 0, []
    for shadow in shadows:
        price = direct.get(shadow.market)
        if price is None:
            continue
        compared += 1
        mismatch = Mismatch(shadow.market.key, price, shadow.price)
        if abs(mismatch.difference) > CROSS_CHECK:
            found.append(mismatch)
    found.sort(key=lambda m: -abs(m.difference))
    return compared, found


def points_of(doc: FiguresDoc) -> list[Point]:
    """The figures as points: each pair at (all, pair), each asset priced in USD at
    (asset, asset) with its USD volume."""
    points = [
        Point(Market(PAIRS_EXCHANGE, p.pair), doc.t, p.price, p.volume)
        for p in doc.pairs
        if p.price is not None
    ]
    points += [
        Point(Market(ASSETS_EXCHANGE, a.asset), doc.t, a.price_usd, a.volume_usd)
        for a in doc.assets
        if a.price_usd is not None and a.price_usd > 0
    ]
    return points
