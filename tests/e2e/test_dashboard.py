"""The dashboard in headless Chromium (Debian's, driven by Playwright) against the real service
and alerter processes on seeded data: the rank table and its normalised toggle and sorting, a
market picked by search and charted, the alerts, a phone-width layout, nothing fetched from
anywhere but the service, and a screenshot (kept in docs/ when TRACKER_SCREENSHOT names it)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.crossmarket import Observation, asset_figures, pair_figures
from common.figures import FiguresDoc
from common.figures_store import FiguresStore
from common.models import Alert, Market, Point
from common.sealed import new_secret_key
from common.settings import Settings
from common.ticks import tick_floor
from common.users_store import UsersStore
from tests.helpers.browser import watched_page
from tests.helpers.processes import api_processes
from tests.helpers.receiver import receiving
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import wait_for

SECRET_KEY = new_secret_key()
SERVICE_SETTINGS: list[Settings] = []
SERVICE_LOGS: list[Path] = []
# level, relative amplitude: absolute stdev order differs from the normalised one.
MARKETS = {
    "btcjpy": (6_000_000.0, 0.001),
    "btcusd": (40_000.0, 0.002),
    "ethusd": (2_500.0, 0.01),
    "solusd": (100.0, 0.05),
    "xrpusd": (0.5, 0.03),
}
BY_STDEV = ["btcjpy", "btcusd", "ethusd", "solusd", "xrpusd"]
BY_NORMALISED = ["solusd", "xrpusd", "ethusd", "btcusd", "btcjpy"]


KEYS: dict[str, str] = {}  # the seeded user's API key, by user


# A day of points, four minutes apart: the alerter reads each through the stream, and 8,640
# one-minute points kept the service from its first rank for some 50 s.
TICK = 240
TICKS = 86400 // TICK


async def _seed(config: Settings) -> None:
    now = tick_floor(time.time(), TICK)
    points = [
        Point(Market("bitfinex", s), now - TICK * i, level * (1 + amp * math.sin(i / 10)), 1e3 + i)
        for s, (level, amp) in MARKETS.items()
        for i in range(TICKS)
    ]
    async with tables(config) as store:
        await store.put_points(points)
        btc = Market("bitfinex", "btcusd")
        await store.put_alert(Alert(btc, now - 600, 140_000.0, 40_000.0, 60))
        # The pair across markets: its points (exchange `all`) and the tick's figures.
        level, amp = MARKETS["btcusd"]
        await store.put_points(
            [
                Point(PAIR, now - TICK * i, level * (1 + amp * math.cos(i / 10)), 5e3)
                for i in range(TICKS)
            ]
        )
        await FiguresStore(store).put(figures_doc(now, level))
        users = UsersStore(store)
        await users.add_user("alice")
        KEYS["alice"] = (await users.create_key("alice"))[1]


PAIR = Market("all", "btc-usd")
STATUSES = {"bitfinex": "used", "kraken": "used", "binance": "outlier"}
STATUSES |= {"bitstamp": "stale", "coinbase-pro": "gross"}


def figures_doc(t: int, level: float) -> FiguresDoc:
    """The tick's figures as the fetcher computes them, for five BTC/USD markets."""
    prices = {"bitfinex": level, "kraken": level * 1.001, "binance": level * 1.12}
    prices |= {"bitstamp": level * 0.999, "coinbase-pro": level * 100}
    volumes = {"bitfinex": 3_000.0, "kraken": 3_000.0, "binance": 500.0}
    volumes |= {"bitstamp": 1_000.0, "coinbase-pro": 500.0}
    observations = [
        Observation(e, "btcusd", p, volumes[e], stale=e == "bitstamp") for e, p in prices.items()
    ]
    pair = pair_figures("btc-usd", "btc", "usd", observations, 10.0)
    assert {c.exchange: c.status for c in pair.constituents} == STATUSES
    return FiguresDoc(
        t, time.time(), 3600, 10.0, (pair,), tuple(asset_figures({"btc-usd": pair}).values())
    )


@pytest.fixture(scope="module")
def service(dynamodb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = make_settings(dynamodb_url)
    asyncio.run(_seed(config))
    logs = Path(tmp_path_factory.mktemp("dashboard"))
    extra = {"TRACKER_SECRET_KEY": SECRET_KEY, "TRACKER_ALLOW_TARGETS": "127.0.0.2/32"}
    ready = lambda body: body["total"] == len(MARKETS)  # noqa: E731
    with api_processes(config, logs, "/rank", ready, extra, deliver=True) as base:
        SERVICE_SETTINGS.append(config)
        SERVICE_LOGS.append(logs)
        yield base


async def test_docs_page_lists_the_operations_offline(service: str, tmp_path: Path) -> None:
    """/docs renders Swagger UI from the vendored files: every operation listed, no request
    leaving the service, no script error."""
    async with watched_page() as watched:
        page = watched.page
        await page.goto(service + "/docs")
        await page.locator(".opblock").first.wait_for(timeout=15_000)
        listed = set(await page.locator(".opblock-summary-path").all_inner_texts())
        await page.screenshot(path=tmp_path / "docs.png", full_page=True)
    paths = {p.replace("\u200b", "") for p in listed}
    assert {"/symbols", "/symbols/{symbol}/history", "/rank", "/alerts", "/readyz"} <= paths
    assert (tmp_path / "docs.png").stat().st_size > 10_000
    assert watched.errors == []
    requested = watched.requested
    assert requested and all(url.startswith(service) for url in requested), requested


async def test_dashboard_in_headless_chromium(service: str, tmp_path: Path) -> None:
    async with watched_page() as watched:
        page = watched.page
        await page.goto(service + "/")

        rows = page.locator("#rank tbody tr")
        await rows.nth(len(MARKETS) - 1).wait_for()
        markets = page.locator("#rank tbody td:nth-child(2)")
        assert await markets.all_inner_texts() == [f"bitfinex:{s}" for s in BY_STDEV]

        await page.get_by_label("Normalised").check()
        await page.wait_for_function(
            "document.querySelector('#rank tbody td:nth-child(2)').textContent"
            " === 'bitfinex:solusd'"
        )
        assert await markets.all_inner_texts() == [f"bitfinex:{s}" for s in BY_NORMALISED]

        await page.get_by_role("button", name="Market", exact=True).click()
        assert await markets.all_inner_texts() == sorted(f"bitfinex:{s}" for s in MARKETS)
        assert await page.locator("#rank th", has_text="Market").get_attribute("aria-sort") == (
            "ascending"
        )

        # btcusd is charted first; pick ethusd through the search box.
        await page.locator("#chart canvas").first.wait_for()
        await page.get_by_label("Add a market").fill("ethusd")
        await page.get_by_label("Add a market").press("Enter")
        await page.wait_for_function(
            "document.querySelector('#chart').getAttribute('aria-label').includes('ethusd')"
        )
        chips = await page.locator("#picked li").all_inner_texts()
        assert [c.split()[0] for c in chips] == ["bitfinex:btcusd", "bitfinex:ethusd"]
        legend = await page.locator("#chart .u-legend").inner_text()
        assert "bitfinex:btcusd" in legend and "bitfinex:ethusd" in legend
        label = await page.locator("#chart").get_attribute("aria-label") or ""
        assert f"over the last 24 hours, {TICKS} ticks" in label, label

        alerts = await page.locator("#alerts li").all_inner_texts()
        assert len(alerts) == 1 and "bitfinex:btcusd at 140,000" in alerts[0]
        assert "3.50× its average 40,000 over the 60 points before" in alerts[0], alerts
        assert await page.locator("#chart-title").inner_text() == "Last 24 hours"
        first_row = await rows.first.inner_text()  # sorted by market: btcjpy, figures readable
        assert "6,000,2" in first_row and str(TICKS) in first_row  # the mean, 6,000,2xx
        status = await page.locator("#status").inner_text()
        assert status.startswith("5 markets")
        # No fetcher runs in this test: the banner says so, from /status.
        banner = page.locator("#problems")
        await banner.wait_for(state="visible")
        assert "is `tracker fetch` running?" in await banner.inner_text()

        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        if os.environ.get("TRACKER_SCREENSHOT"):
            shutil.copy(tmp_path / "dashboard.png", os.environ["TRACKER_SCREENSHOT"])

        # A phone's width: no sideways scrolling of the page.
        await page.set_viewport_size({"width": 390, "height": 844})
        # Two frames drawn at the new width: its layout is the one measured.
        await page.evaluate(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0

    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert watched.errors == []
    requested = watched.requested
    assert requested and all(url.startswith(service) for url in requested), requested


async def test_the_pair_view_and_the_assets_table(service: str, tmp_path: Path) -> None:
    """BTC/USD across markets: its figures, a chart of the aggregate with the constituents the
    board holds, the constituents coloured by status with why each is left out; the assets
    table by USD volume."""
    async with watched_page() as watched:
        page = watched.page
        await page.goto(service + "/")
        rows = page.locator("#constituents tbody tr")
        await rows.nth(len(STATUSES) - 1).wait_for()
        assert await page.locator("#pair-title").inner_text() == "BTC-USD across markets"
        classes = [await rows.nth(i).get_attribute("class") for i in range(len(STATUSES))]
        markets = await page.locator("#constituents tbody td:first-child").all_inner_texts()
        assert dict(zip(markets, classes, strict=True)) == {
            f"{e}:btcusd": f"status-{s}" for e, s in STATUSES.items()
        }
        gross = await page.locator("#constituents tr.status-gross").inner_text()
        assert "gross error: left out" in gross and "+9890.01 %" in gross  # ×100 of ≈ 1.001
        figures = await page.locator("#pair-figures").inner_text()
        assert "Markets used\n2 of 5" in figures, figures
        await page.wait_for_function(
            "(document.querySelector('#pair-chart').getAttribute('aria-label') || '')"
            f".includes('{TICKS} ticks')"
        )
        legend = await page.locator("#pair-chart .u-legend").inner_text()
        assert "btc-usd (all markets)" in legend and "bitfinex:btcusd" in legend
        assert "kraken:btcusd" not in legend  # not on the board: not charted, not asked for
        assets = await page.locator("#assets tbody td:first-child").all_inner_texts()
        assert assets == ["btc", "usd"]
        await page.locator("#pair-view").screenshot(path=tmp_path / "pair.png")
    assert (tmp_path / "pair.png").stat().st_size > 10_000
    assert watched.errors == []
    assert all(url.startswith(service) for url in watched.requested)
    assert not any("kraken" in url for url in watched.requested)


async def test_my_alerts_panel_adds_tests_pauses_and_deletes(service: str) -> None:
    """Paste a key (kept for the tab), add a webhook and see its secret once, send a test, add
    a rule, see its alert delivered after a crossing is written, pause it, delete it."""
    (config,) = SERVICE_SETTINGS
    async with receiving("127.0.0.2") as receiver, watched_page() as watched:
        page = watched.page
        await page.goto(service + "/")
        await page.get_by_label("Your API key").fill(KEYS["alice"])
        await page.get_by_role("button", name="Use this key").click()
        await page.locator("#my-user", has_text="Signed in as alice").wait_for()
        assert await page.evaluate("sessionStorage.getItem('tracker-key')") == KEYS["alice"]

        form = page.locator("#channel-form")
        await form.get_by_label("Name").fill("my hook")
        await form.locator("input[name=url]").fill(receiver.url)
        await form.get_by_role("button", name="Add channel").click()
        await page.locator("#my-message", has_text="signing secret").wait_for()
        assert "whsec_" in await page.locator("#my-message").inner_text()
        row = page.locator("#my-channels tbody tr", has_text="my hook")
        await row.wait_for()
        assert "/hook" not in await row.inner_text()  # masked: the host only
        await row.get_by_role("button", name="Test").click()
        await page.locator("#my-message", has_text="delivered (HTTP 200)").wait_for()
        assert len(receiver.got) == 1

        rule_form = page.locator("#rule-form")
        await rule_form.get_by_label("Name").fill("BTC over 50k")
        await rule_form.get_by_label("Symbol").fill("btcusd")
        await rule_form.locator("input[name=level]").fill("50000")
        await rule_form.get_by_label("my hook").check()
        await rule_form.get_by_role("button", name="Add rule").click()
        rule = page.locator("#my-rules tbody tr", has_text="BTC over 50k")
        await rule.wait_for()
        assert "armed" in await rule.inner_text()

        # The alerter holds the rule (the module's only one): the crossing will meet it.
        alerter_log = SERVICE_LOGS[0] / "alerter.log"
        await wait_for(
            lambda: "user rule change(s) applied; 1 rule(s) held" in alerter_log.read_text(),
            30,
            "the alerter following the new rule",
            lambda: alerter_log.read_text()[-2000:],
        )
        # A crossing, written as the fetcher would: the alerter fires, the notifier delivers.
        async with tables(config, create=False) as store:
            t = tick_floor(time.time(), 60) + 60
            await store.put_points([Point(Market("bitfinex", "btcusd"), t, 60_000.0, 1e3)])
        delivered = page.locator("#my-alerts tbody tr.delivery-delivered")

        async def shown() -> int:
            await rule.get_by_role("button", name="Alerts").click()
            return await delivered.count()

        await wait_for(shown, 60, "the delivery shown", lambda: page.locator("#my-alerts"))
        assert "60,000" in await delivered.first.inner_text()
        assert receiver.count(f"{await rule.get_attribute('data-id')}:{t}") == 1

        await rule.get_by_role("button", name="Pause").click()
        await page.locator("#my-rules tbody tr", has_text="paused").wait_for()
        await (
            page.locator("#my-rules tbody tr", has_text="BTC over 50k")
            .get_by_role("button", name="Delete")
            .click()
        )
        await page.locator("#my-message", has_text="Deleted BTC over 50k").wait_for()
        await page.locator("#my-rules tbody tr").first.wait_for(state="detached")
    assert watched.errors == []
    assert all(url.startswith(service) for url in watched.requested), watched.requested
