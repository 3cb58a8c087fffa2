"""Real processes on DynamoDB Local + the demo exchange: fetcher (1 s ticks), alerter, a local
webhook. A 3.5× spike gives exactly one alert record and one POST, a 2.9× move none, and an
alerter SIGKILLed before it handled the spike still gives exactly one of each after restart."""

from __future__ import annotations

import time
from typing import Any

from common.models import Market
from tests.helpers.exchange import control, last_price
from tests.helpers.processes import TRACKER, Processes
from tests.helpers.progress import read_past, settled
from tests.helpers.running import webhook_receiver
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for
from tracker import dynamodb_local

BTC = Market("bitfinex", "btcusd")
ETH = Market("bitfinex", "ethusd")
SPIKED = [BTC, Market("all", "btc-usd"), Market("asset", "btc")]


async def test_spike_alerts_once_even_across_an_alerter_sigkill(
    dynamodb_url: str, processes: Processes
) -> None:
    demo_port = dynamodb_local.free_port()
    demo = f"http://127.0.0.1:{demo_port}"
    settings = make_settings(dynamodb_url, fetch_interval=1, alert_window=20, alert_cooldown=600)
    async with webhook_receiver() as (posts, hook):
        env = {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_FETCH_INTERVAL": "1",
            "TRACKER_ALERT_WINDOW": "20",
            "TRACKER_ALERT_COOLDOWN": "600",
            "TRACKER_NOTIFY_URLS": hook,
            "TRACKER_BITFINEX_URL": demo,
            "TRACKER_WORKER_ID": "e2e-alerter",
        }
        processes.start(
            "demo", [*TRACKER, "demo-exchange", "--port", str(demo_port), "--pairs", "40"], env
        )
        dynamodb_local.wait_for_port(demo_port)
        control(demo, "/control/volatility", {"volatility": 0.0005})
        assert subprocess_ok(processes, env)
        processes.start("fetcher", [*TRACKER, "fetch"], env)
        processes.start("alerter", [*TRACKER, "alert"], env)
        processes.start("notifier", [*TRACKER, "deliver"], env)
        async with tables(settings, create=False) as store:

            async def history(market: Market) -> int:
                return len(await store.query_points(market, time.time() - 20, time.time()))

            await wait_for(lambda: history(BTC), 60, "fetcher writing")
            await wait_for(lambda: _ge(history(BTC), 15), 60, "15 s of history")

            # 2.9×: no alert.
            control(
                demo,
                "/control/price",
                {"symbol": "ethusd", "price": 2.9 * last_price(demo, "tETHUSD")},
            )
            # Kill the alerter, spike while it is dead, restart it: exactly one alert.
            processes.kill("alerter")
            spike = 3.5 * last_price(demo, "tBTCUSD")
            control(demo, "/control/price", {"symbol": "btcusd", "price": spike})

            async def spiked() -> Any:
                point = await store.latest_point(BTC)
                return point is not None and point.price == spike and point

            # The spike is written while nobody reads the stream.
            written = await wait_for(spiked, 30, "the spike stored")
            restarted = time.time()
            processes.start("alerter-2", [*TRACKER, "alert"], env)
            await wait_for(lambda: len(posts) >= len(SPIKED), 60, "webhook POSTs")
            await read_past(store, written.t, restarted)
            await settled(store)  # a wrong second alert's POST would have been sent by now
            alerts = await store.list_alerts()
        # Bitfinex alone is fetched here, so the pair btc-usd (exchange all) and the asset
        # btc are this one market's figures: the house rule sees them spike with it.
        assert sorted(a.market for a in alerts) == sorted(SPIKED), processes.log("alerter-2")
        assert all(3.3 < a.ratio < 3.7 for a in alerts)
        assert len(posts) == len(SPIKED)
        assert sorted(p["title"].split(":")[0] for p in posts) == [
            "BTC (USD)",
            "BTC-USD across markets",
            "bitfinex BTCUSD",
        ], posts
        assert processes.stop("fetcher") == 0
        assert processes.stop("alerter-2") == 0
        assert processes.stop("notifier") == 0


def subprocess_ok(processes: Processes, env: dict[str, str]) -> bool:
    init = processes.start("init", [*TRACKER, "init-db"], env)
    return init.wait(60) == 0


async def _ge(value: Any, n: int) -> bool:
    return int(await value) >= n
