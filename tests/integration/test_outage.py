"""The service and the alerter when DynamoDB goes away or pushes back (a fault proxy in front of
DynamoDB Local): nothing exits, no 500, the board held is served with its age, readiness holds
while staleness is reported; before any figures exist, 503s that say so; only a configuration
error ends a worker, in one line."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import pytest

from common.models import Market, Point
from common.settings import Settings
from tests.faultproxy import FaultProxy, fault_proxy
from tests.helpers.ranked import NOW
from tests.helpers.running import app_client, published, running_demo, stack
from tests.helpers.tables import tables
from tests.helpers.waiting import wait_for

BOARD_PATHS = (
    "/rank",
    "/rank?symbols=btcusd,ethusd",
    "/symbols",
    "/symbols?exchange=bitfinex",
    "/symbols/btcusd",
    "/symbols/btcusd/rank",
    # Read from the table, but asked before the outage: answered again from that answer.
    "/symbols/btcusd/history",
    "/alerts",
)


async def test_no_figures_yet_is_503_with_retry_after(seeded: Any) -> None:
    """Points stored but no alerter: figures answer 503 + Retry-After saying why (never an
    empty 200 dated 1970, never a 422 for a valid exchange); a market's latest price comes
    from the table; the replica is ready, and says what is missing."""
    settings, points = seeded
    async with app_client(settings) as http:
        for path in ("/rank", "/symbols", "/symbols/btcusd/rank", "/rank?exchange=bitfinex"):
            answer = await http.get(path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["retry-after"] == str(settings.fetch_interval)
            assert "not ready yet" in answer.json()["detail"]
        latest = await http.get("/symbols/btcusd")
        btc = max(
            (p for p in points if p.market == Market("bitfinex", "btcusd")), key=lambda p: p.t
        )
        assert latest.status_code == 200 and latest.json()["price"] == btc.price
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "no figures yet" in ready.json()["checks"]["data"]
        status = (await http.get("/status")).json()
        assert not status["board"]["ok"] and not status["alerter"]["ok"]
        assert any(p.startswith("alerter: no heartbeat") for p in status["problems"])


async def test_outage_serves_the_board_held_and_nothing_exits(seeded: Any) -> None:
    """DynamoDB away: every board answer, and every question asked before, stays 200 with its
    age (`Age`, `as_of`); a question never asked gets 503 + Retry-After; /readyz stays 200
    (degraded), /status and /metrics say so; throttling and 500s likewise; the alerter keeps
    running and, DynamoDB back, publishes fresh figures. No answer is a 500 at any moment."""
    settings, points = seeded
    async with fault_proxy(settings.aws_endpoint_url or "") as proxy:
        proxied = settings.model_copy(update={"aws_endpoint_url": proxy.url})
        async with stack(proxied) as (_, alerter, http):
            await published(alerter, len(points))
            before = {path: (await http.get(path)).json() for path in BOARD_PATHS}
            statuses: list[int] = []

            cache = http._transport.app.state.tracker.snapshots  # type: ignore[attr-defined]

            async def failed_look() -> bool:
                await cache.get()  # looks again once its poll interval is past
                return cache.error is not None

            async def check_outage(proxy: FaultProxy) -> None:
                # The app has asked DynamoDB for the board since the fault began, and failed.
                await wait_for(failed_look, 30, "the app's board look failing")
                for path in BOARD_PATHS:
                    answer = await http.get(path)
                    statuses.append(answer.status_code)
                    assert answer.status_code == 200, (path, answer.text)
                    # The age of the board held: since the alerter published it.
                    age = time.time() - alerter.published
                    assert int(answer.headers["age"]) in (int(age), int(age) - 1), age
                    assert answer.json() == before[path]
                history = await http.get("/symbols/ethusd/history")  # never asked before
                statuses.append(history.status_code)
                assert history.status_code == 503 and history.headers["retry-after"]
                assert "storage unavailable" in history.json()["detail"]
                ready = await http.get("/readyz")
                statuses.append(ready.status_code)
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                status = (await http.get("/status")).json()
                assert not status["dynamodb"]["ok"] and status["problems"]
                metrics = (await http.get("/metrics")).text
                assert 'tracker_service_store{figure="store_up"} 0.0' in metrics

            await proxy.down()
            await check_outage(proxy)
            # The alerter meets the outage: a few of its calls have failed.
            failures = alerter.store.outage.failures
            await wait_for(
                lambda: alerter.store.outage.down and alerter.store.outage.failures >= failures + 3,
                30,
                "the alerter's calls failing",
            )
            await proxy.up()
            for fault in ("throttle", "error"):
                proxy.inject(fault)
                await check_outage(proxy)
                proxy.inject(None)
            assert proxy.injected["throttle"] and proxy.injected["error"]
            assert 500 not in statuses

            # Back: the same alerter reads new points and the figures move on.
            btc = Market("bitfinex", "btcusd")
            async with tables(settings, create=False) as store:
                await store.put_points([Point(btc, NOW + 60, 41_000.0, 1.0)])
            await wait_for(lambda: alerter.board.window_end == NOW + 60, 60, "the alerter reads on")

            async def fresh() -> bool:
                now = (await http.get("/rank")).json()
                return bool(now["window_end"] != before["/rank"]["window_end"])

            await wait_for(fresh, 30, "fresh figures served")
            assert alerter.store.outage.outages >= 1
            await wait_for(lambda: not alerter.store.outage.down, 30, "the outage logged over")
            assert (await http.get("/readyz")).status_code == 200


async def test_a_service_started_during_an_outage_says_so(dynamodb_url: str) -> None:
    """Nothing held and DynamoDB away: 503 + Retry-After with a reason (readiness too), never a
    500; each request gives up on the short read timeout (none waits for the suite's)."""
    async with fault_proxy(dynamodb_url) as proxy:
        await proxy.down()
        settings = Settings(aws_endpoint_url=proxy.url, table_prefix="gone", read_timeout=0.5)
        async with app_client(settings) as http:
            for path in ("/rank", "/symbols", "/symbols/btcusd", "/alerts", "/readyz"):
                answer = await http.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"]
            assert (await http.get("/healthz")).status_code == 200


@pytest.mark.parametrize("command", [["alerter"], ["fetcher"]])
async def test_a_configuration_error_ends_a_worker_in_one_line(
    dynamodb_url: str, command: list[str]
) -> None:
    """No such table: the worker exits 1 with one line naming it, not a traceback, and not
    after waiting forever as it does through an outage."""
    async with running_demo(pairs=20) as (_, url):  # the fetcher meets the table when it writes
        env = os.environ | {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": "nosuchtables",
            "TRACKER_BITFINEX_URL": url,
            "TRACKER_FETCH_INTERVAL": "1",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *command, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(process.communicate(), 90)
    stderr = err.decode()
    assert process.returncode == 1, stderr[-2000:]
    assert "cannot work as configured" in stderr
    assert "nosuchtables" in stderr and "Traceback" not in stderr
