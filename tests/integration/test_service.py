"""The API on DynamoDB Local: exact history, rank equal to a statistics.stdev reference,
after live writes, a backfill-style direct write and a restart; 404/422s; ETag/304."""

from __future__ import annotations

import asyncio
import os
import statistics
from typing import Any

import pytest

from common.models import Market, Point
from common.ticks import iso
from tests.helpers.ranked import MARKETS, NOW, WINDOW, seed
from tests.helpers.running import published, serving_latest, stack
from tests.helpers.waiting import wait_for


def reference(
    points: list[Point], metric: str = "price", normalize: bool = False
) -> dict[Market, tuple[float, float, int]]:
    """statistics.stdev/mean over stored points with end - WINDOW < t <= end."""
    end = max(p.t for p in points)
    by: dict[Market, list[float]] = {}
    latest: dict[tuple[Market, int], float] = {}
    for p in points:
        value = p.price if metric == "price" else p.volume
        if value is not None and end - WINDOW < p.t <= end:
            latest[(p.market, p.t)] = value
    for (market, _), value in sorted(latest.items()):
        by.setdefault(market, []).append(value)
    out = {}
    for market, values in by.items():
        if len(values) >= 2:
            stdev, mean = statistics.stdev(values), statistics.fmean(values)
            out[market] = (stdev / mean if normalize else stdev, mean, len(values))
    return out


def expected_ranks(ref: dict[Market, tuple[float, float, int]]) -> dict[Market, int]:
    scores = {m: s for m, (s, _, _) in ref.items()}
    return {m: 1 + sum(1 for o in scores.values() if o > s) for m, s in scores.items()}


def check_ranking(body: dict[str, Any], ref: dict[Market, tuple[float, float, int]]) -> None:
    ranks = expected_ranks(ref)
    assert body["total"] == len(ref)
    got = {Market(e["exchange"], e["symbol"]): e for e in body["ranking"]}
    assert set(got) == set(ref)
    for market, (score, mean, count) in ref.items():
        entry = got[market]
        assert entry["rank"] == ranks[market], market
        assert entry["count"] == count
        assert entry["mean"] == pytest.approx(mean, rel=1e-12)
        assert entry["stdev"] == pytest.approx(score, rel=1e-9, abs=1e-12)


async def test_history_boundaries_and_rank_equal_the_reference(seeded: Any) -> None:
    """History is start < t <= end exactly; /rank and /symbols/{s}/rank equal statistics.stdev
    over the stored window, ties share a rank, one-point markets are not ranked."""
    settings, points = seeded
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        r = await http.get("/symbols/btcusd/history", params={"start": NOW - 600, "end": NOW - 120})
        assert r.status_code == 200
        times = [p["time"] for p in r.json()["points"]]
        assert times == [iso(t) for t in range(NOW - 540, NOW - 119, 60)]
        default = (await http.get("/symbols/btcusd/history")).json()
        assert len(default["points"]) == 60 and default["end"] == iso(NOW)

        ref = reference(points)
        body = (await http.get("/rank", params={"limit": 1000})).json()
        check_ranking(body, ref)
        assert body["window_end"] == iso(NOW) and body["window_start"] == iso(NOW - WINDOW)
        ranks = {(e["exchange"], e["symbol"]): e["rank"] for e in body["ranking"]}
        assert ranks[("bitfinex", "twin1usd")] == ranks[("bitfinex", "twin2usd")]
        assert ("bitfinex", "oneusd") not in ranks

        one = (await http.get("/symbols/btcjpy/rank")).json()
        assert one["rank"] == expected_ranks(ref)[Market("bitfinex", "btcjpy")]
        assert one["stdev"] == pytest.approx(ref[Market("bitfinex", "btcjpy")][0], rel=1e-9)
        assert one["total"] == len(ref) and one["count"] == 60
        lonely = (await http.get("/symbols/oneusd/rank")).json()
        assert lonely["rank"] is None and lonely["count"] == 1


async def test_subset_normalize_paging_and_volume(seeded: Any) -> None:
    """symbols= ranks a subset; normalize ranks stdev/mean; limit/offset page; volume works."""
    settings, points = seeded
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        subset = (
            await http.get("/rank", params={"symbols": "btcusd,ethusd", "exchange": "kraken"})
        ).json()
        check_ranking(
            subset, {m: v for m, v in reference(points).items() if m.exchange == "kraken"}
        )
        normalized = (await http.get("/rank", params={"normalize": "true"})).json()
        ref = reference(points, normalize=True)
        ranks = expected_ranks(ref)
        assert {(e["exchange"], e["symbol"]): e["rank"] for e in normalized["ranking"]} == {
            (m.exchange, m.symbol): r for m, r in ranks.items()
        }
        full = (await http.get("/rank")).json()["ranking"]
        page = (await http.get("/rank", params={"limit": 3, "offset": 2})).json()
        assert page["ranking"] == full[2:5] and page["total"] == len(full)
        check_ranking(
            (await http.get("/rank", params={"metric": "volume"})).json(),
            reference(points, "volume"),
        )


async def test_rank_after_direct_write_and_restart_equals_reference(seeded: Any) -> None:
    """A backfill-style write straight to the table and a restart of every process both leave
    the figures equal to the reference over what is stored."""
    settings, points = seeded
    async with stack(settings) as (store, alerter, http):
        await published(alerter, len(points))
        rewritten = [
            Point(p.market, p.t, p.price * 1.5, p.volume)
            for p in points
            if p.market.symbol == "ethusd" and p.t > NOW - 1800
        ]
        await store.put_points(rewritten)
        points = [p for p in points if (p.market, p.t) not in {(q.market, q.t) for q in rewritten}]
        points += rewritten
        await published(alerter, len(seed()) + len(rewritten))
        await serving_latest(http, alerter)
        http_body = (await http.get("/rank", params={"limit": 1000})).json()
    # A fresh stack: new alerter (windows reloaded from the table) and new app.
    async with stack(settings) as (_, alerter, http):
        await wait_for(lambda: alerter.published > 0, 30, "published after restart")
        after = (await http.get("/rank", params={"limit": 1000})).json()
    ref = reference(points)
    check_ranking(after, ref)
    check_ranking(http_body, ref)


async def test_errors_are_helpful(seeded: Any) -> None:
    """Unknown market → 404 naming it; bad metric, exchange, symbol, range, limit → 422."""
    settings, points = seeded
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        r = await http.get("/symbols/dogeusd")
        assert r.status_code == 404 and "dogeusd" in r.json()["detail"]
        r = await http.get("/symbols/btcusd/history", params={"exchange": "binance"})
        assert r.status_code == 404 and "binance" in r.json()["detail"]
        cases: list[tuple[str, dict[str, str | int]]] = [
            ("/rank", {"metric": "open"}),
            ("/rank", {"exchange": "nowhere"}),
            ("/symbols", {"exchange": "nowhere"}),
            ("/symbols/BTC$USD", {}),
            ("/symbols/btcusd/history", {"start": NOW, "end": NOW - 60}),
            ("/symbols/btcusd/history", {"start": "yesterday"}),
            ("/symbols/btcusd/history", {"start": NOW - 10**7, "end": NOW}),
            ("/rank", {"limit": 100000}),
            ("/alerts", {"limit": 0}),
        ]
        for path, params in cases:
            r = await http.get(path, params=params)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["detail"], (path, params)
        r = await http.get("/rank", params={"symbols": "btcusd,nosuchusd"})
        assert r.status_code == 404 and "nosuchusd" in r.json()["detail"]
        assert (await http.get("/symbols/BTCUSD")).status_code == 200  # case-insensitive


async def test_etag_and_304(seeded: Any) -> None:
    """Cached answers carry ETag and max-age to the next tick; If-None-Match gets 304."""
    settings, points = seeded
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        first = await http.get("/rank")
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("max-age=")
        assert 0 <= int(first.headers["cache-control"].split("=")[1]) <= 60
        again = await http.get("/rank", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag
        other = await http.get("/symbols", headers={"If-None-Match": etag})
        assert other.status_code == 200


async def test_health_ready_metrics_and_docs(seeded: Any) -> None:
    """/readyz serves (200) and names what is wrong: no fetcher runs here; /healthz names its
    process; HEAD answers the cached routes with their headers and no body; /metrics and /docs
    answer."""
    settings, points = seeded
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        alive = (await http.get("/healthz")).json()
        assert alive == {"status": "ok", "process": os.getpid()}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        # Serving either way; `ok` or `degraded` as the seeded ticks are fresh or stale by now.
        data = body["checks"]["data"]
        assert "10 markets" in data
        assert body["status"] == ("ok" if data.startswith("ok (") else "degraded"), body
        assert body["checks"]["dynamodb"] == "ok"
        assert body["checks"]["fetcher"] == "no heartbeat: is `tracker fetch` running?", body
        for path in ("/rank", "/symbols", "/symbols/btcusd/history?exchange=bitfinex"):
            got, head = await http.get(path), await http.head(path)
            assert head.status_code == 200 and head.content == b"", path
            for name in ("etag", "cache-control", "content-type"):
                assert head.headers[name] == got.headers[name], (path, name)
        await http.get("/rank")
        metrics = (await http.get("/metrics")).text
        assert (
            'tracker_http_request_seconds_count{method="GET",route="/rank",status="200"}' in metrics
        )
        assert "tracker_markets 10.0" in metrics
        assert (await http.get("/docs")).status_code == 200
        spec = (await http.get("/openapi.json")).json()
        assert spec["paths"]["/rank"]["get"]["summary"]
        assert spec["components"]["schemas"]["Ranking"]["examples"]


async def test_read_only_bounded_and_cors_off_unless_configured(seeded: Any) -> None:
    """Writes are refused, oversized request lines too; CORS headers only for named origins."""
    settings, points = seeded
    origin = {"Origin": "https://dash.example"}
    async with stack(settings) as (_, alerter, http):
        await published(alerter, len(points))
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            refused = await http.request(method, "/symbols", json={"x": 1})
            assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
            assert "read-only" in refused.json()["detail"]
        long_query = await http.get("/rank", params={"symbols": "a" * 20_000})
        assert long_query.status_code == 414 and "query string" in long_query.json()["detail"]
        assert (await http.get("/" + "x" * 600)).status_code == 414
        plain = await http.get("/symbols", headers=origin)
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers

    allowed = settings.model_copy(update={"cors_origins": ["https://dash.example"]})
    async with stack(allowed) as (_, alerter, http):
        await wait_for(lambda: alerter.published > 0, 30, "published after restart")
        answer = await http.get("/symbols", headers=origin)
        assert answer.headers["access-control-allow-origin"] == "https://dash.example"
        preflight = await http.options(
            "/rank", headers=origin | {"Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code == 200
        other = await http.get("/symbols", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_identical_history_requests_share_one_query_per_tick(seeded: Any) -> None:
    """Forty identical history requests at once: one Query, one answer for all; new boards
    of the same tick (the alerter publishing again) do not read it again; a new tick does."""
    settings, points = seeded
    async with stack(settings) as (store, alerter, http):
        await published(alerter, len(points))
        queries = 0
        served = http._transport.app.state.tracker.store  # type: ignore[attr-defined]
        query_series = served.query_series

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal queries
            queries += 1
            return await query_series(*args, **kwargs)

        served.query_series = counted
        url = "/symbols/btcusd/history?exchange=bitfinex"
        answers = await asyncio.gather(*(http.get(url) for _ in range(40)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
        assert len(answers[0].json()["points"]) == 60
        assert queries == 1

        # Another market's point of the same tick: a new board, the same tick for btcusd.
        await store.put_points([Point(Market("bitfinex", "flatusd"), NOW, 5.5, 1.0)])
        await published(alerter, len(points) + 1)
        await serving_latest(http, alerter)
        assert (await http.get(url)).status_code == 200
        assert queries == 1

        # The next tick, btcusd's point in: read again, once.
        await store.put_points([Point(MARKETS[0], NOW + 60, 40_000.0, 1.0)])
        await published(alerter, len(points) + 2)
        await serving_latest(http, alerter)
        latest = await asyncio.gather(*(http.get(url) for _ in range(10)))
        assert latest[0].json()["points"][-1]["value"] == 40_000.0
        assert queries == 2
