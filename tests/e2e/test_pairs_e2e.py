"""Real processes on DynamoDB Local + the demo exchange (1 s ticks): BTC/USD on five markets,
one pushed 12 % away, held at 7 % and brought back to 3 % (an outlier, kept one inside the
10 % band, used again only within 5 %), one frozen (stale after TRACKER_STALE_AFTER), one with
a ×100 decimal slip (gross). At every tick the stored `all:btc-usd` point, and every
`/pairs/btc-usd` answer seen, equal the exact reference replayed from the stored points of
the five markets; `/rank?exchange=all` and `/rank?exchange=asset&metric=volume` rank them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.models import Market
from common.ticks import parse_time
from tests.crossmarket_reference import ReferenceRun, close
from tests.helpers.processes import TRACKER, Processes, http_json
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for
from tracker import dynamodb_local

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXCHANGES = ["binance", "bitfinex", "bitstamp", "coinbase-pro", "kraken"]
PUSHED, FROZEN, SLIPPED = "kraken", "bitstamp", "coinbase-pro"
STALE_AFTER = 6


def quirk(demo: str, exchange: str, kind: str, **values: float) -> None:
    http_json(
        f"{demo}/control/quirk", {"exchange": exchange, "symbol": "btcusd", "kind": kind} | values
    )


async def test_a_pair_over_five_markets_equals_the_reference_at_every_tick(
    dynamodb_url: str, processes: Processes, tmp_path: Path
) -> None:
    demo_port, api_port = dynamodb_local.free_port(), dynamodb_local.free_port()
    demo, api = f"http://127.0.0.1:{demo_port}", f"http://127.0.0.1:{api_port}"
    settings = make_settings(dynamodb_url, fetch_interval=1, stale_after=STALE_AFTER)
    env = {
        "AWS_ENDPOINT_URL": dynamodb_url,
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_FETCH_INTERVAL": "1",
        "TRACKER_STALE_AFTER": str(STALE_AFTER),
        "TRACKER_SOURCES": "bitfinex,cryptowatch",
        "TRACKER_BITFINEX_URL": demo,
        "TRACKER_CRYPTOWATCH_URL": demo,
        "TRACKER_SPOOL_DIR": str(tmp_path / "spool"),
        "TRACKER_STATE_DIR": str(tmp_path / "state"),
        "TRACKER_PORT": str(api_port),
        "TRACKER_WORKER_ID": "e2e-pairs",
    }
    processes.start(
        "demo", [*TRACKER, "demo-exchange", "--port", str(demo_port), "--pairs", "40"], env
    )
    dynamodb_local.wait_for_port(demo_port)
    init = processes.start("init-db", [*TRACKER, "init-db"], env)
    assert init.wait(60) == 0, processes.log("init-db")
    processes.start("fetcher", [*TRACKER, "fetch"], env)
    processes.start("alerter", [*TRACKER, "alert"], env)
    processes.start("service", [*TRACKER, "serve"], env)
    seen: dict[int, dict[str, Any]] = {}  # /pairs/btc-usd answers by tick

    def pair() -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = http_json(f"{api}/pairs/btc-usd")
        except OSError:
            return None
        seen[int(parse_time(answer["time"]))] = answer
        return answer

    def status_of(exchange: str) -> str | None:
        answer = pair()
        if answer is None:
            return None
        return next(
            (c["status"] for c in answer["constituents"] if c["exchange"] == exchange), None
        )

    await wait_for(
        lambda: (p := pair()) is not None and len(p["constituents"]) == 5, 90, "five markets"
    )
    # The two sound markets carry most of the volume, as on a real pair where the broken
    # venue is a small one: the volume-weighted median of any market's others is then sound.
    quirk(demo, "bitfinex", "none", volume=1200)
    quirk(demo, "binance", "none", volume=1000)
    quirk(demo, FROZEN, "freeze", volume=900)
    quirk(demo, SLIPPED, "slip", factor=100, volume=40)
    quirk(demo, PUSHED, "offset", percent=12, volume=50)
    await wait_for(lambda: status_of(SLIPPED) == "gross", 30, "the ×100 market gross")
    await wait_for(lambda: status_of(PUSHED) == "outlier", 30, "the 12 % market an outlier")
    quirk(demo, PUSHED, "offset", percent=7)  # inside 10 %, outside 5 %: still an outlier
    first = max(seen)
    await wait_for(lambda: pair() is not None and max(seen) >= first + 4, 30, "four ticks at 7 %")
    assert status_of(PUSHED) == "outlier"
    quirk(demo, PUSHED, "offset", percent=3)
    await wait_for(lambda: status_of(PUSHED) == "used", 30, "the pushed market used again")
    await wait_for(lambda: status_of(FROZEN) == "stale", 30, "the frozen market stale")
    await wait_for(lambda: pair() is not None and len(seen) >= 10, 30, "ten ticks' answers")
    last = max(seen)

    # Every tick from the first to the last, replayed from the stored points.
    async with tables(settings, create=False) as store:
        stored = {
            e: {p.t: p for p in await store.query_points(Market(e, "btcusd"), 0, last, True)}
            for e in EXCHANGES
        }
        figures = {
            p.t: p for p in await store.query_points(Market("all", "btc-usd"), 0, last, True)
        }
    ticks = sorted({t for points in stored.values() for t in points})
    assert ticks and ticks[-1] == last
    run = ReferenceRun(STALE_AFTER)
    statuses_seen: set[str] = set()
    for t in ticks:
        values = {e: (stored[e][t].price, stored[e][t].volume) for e in EXCHANGES if t in stored[e]}
        expected = run.tick(t, values)
        statuses_seen |= set(expected.statuses.values())
        point = figures.get(t)
        assert point is not None, f"no all:btc-usd point at tick {t}"
        assert close(point.price, expected.price), (t, point.price, float(expected.price or 0))
        assert close(point.volume, expected.volume), (t, point.volume, float(expected.volume))
        answer = seen.get(t)
        if answer is not None:
            assert {
                c["exchange"]: c["status"] for c in answer["constituents"]
            } == expected.statuses, t
            assert close(answer["price"], expected.price)
    assert statuses_seen == {"used", "outlier", "gross", "stale"}
    assert len([t for t in ticks if t in seen]) >= 10  # answers compared, not only points

    def ranked(query: str) -> list[str]:
        return [e["symbol"] for e in http_json(f"{api}/rank?{query}&limit=1000")["ranking"]]

    await wait_for(lambda: "btc-usd" in ranked("exchange=all"), 30, "btc-usd ranked among pairs")
    await wait_for(
        lambda: "btc" in ranked("exchange=asset&metric=volume"), 30, "btc ranked among assets"
    )
    assert all("-" in s for s in ranked("exchange=all"))
    assert "btc-usd" not in ranked("metric=price")  # the exchanges' own markets stay apart
