"""The dashboard with 20,000 markets, in headless Chromium against the real service: the rank
table comes a page at a time, a market's rank is found as you type, the picker suggests only
what matches, and no request ships every market's history. The board is written as the
alerter publishes it (no alerter runs: reading 20,000 windows is the restart bench's business);
one market has a day of points to chart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.models import Market, Metric, Point
from common.settings import Settings
from common.snapshot import Snapshot
from common.stats import Summary
from common.ticks import tick_floor
from common.window import BoardRow
from tests.helpers.browser import watched_page
from tests.helpers.processes import TRACKER, Processes, answer_ready
from tests.helpers.tables import make_settings, tables
from tracker import dynamodb_local

MARKETS = 20_000
CHARTED = Market("bitfinex", "s00000usd")


def row(i: int, now: int) -> BoardRow:
    """Market i has the (i+1)-th largest stdev."""
    market = Market("bitfinex", f"s{i:05d}usd")
    stats: dict[Metric, Summary] = {
        "price": Summary(1440, 100.0 + i, float(MARKETS - i)),
        "volume": Summary(1440, 1e4, 10.0),
    }
    return BoardRow(market, now, 100.0 + i, 1e4, stats)


async def _seed(config: Settings, now: int) -> None:
    async with tables(config) as store:
        board = Snapshot(now, 86400, time.time(), tuple(row(i, now) for i in range(MARKETS)), "x")
        await store.put_snapshot(board, 0)
        await store.put_points(
            [Point(CHARTED, now - 60 * i, 100.0 + i % 7, 1e4) for i in range(1440)]
        )


@pytest.fixture(scope="module")
def service(dynamodb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = make_settings(dynamodb_url)
    asyncio.run(_seed(config, tick_floor(time.time(), 60)))
    port = dynamodb_local.free_port()
    running = Processes(Path(tmp_path_factory.mktemp("dashboard-scale")))
    running.start(
        "service",
        [*TRACKER, "serve"],
        {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": config.table_prefix,
            "TRACKER_PORT": str(port),
        },
    )
    base = f"http://127.0.0.1:{port}"
    answer_ready(base + "/rank?limit=1", lambda body: body.get("total") == MARKETS, 60, running)
    try:
        yield base
    finally:
        running.stop_all()


async def test_dashboard_pages_and_searches_20000_markets(service: str) -> None:
    async with watched_page() as watched:
        page = watched.page
        sizes: dict[str, int] = {}

        async def size(response: object) -> None:
            body = await response.body()  # type: ignore[attr-defined]
            sizes[response.url] = len(body)  # type: ignore[attr-defined]

        page.on("response", lambda r: asyncio.ensure_future(size(r)))
        started = time.monotonic()
        await page.goto(service + "/")
        rows = page.locator("#rank tbody tr")
        await rows.nth(49).wait_for()
        shown = time.monotonic() - started
        assert await rows.count() == 50
        assert await page.locator("#rank-range").inner_text() == "1–50 of 20000"
        ranks = page.locator("#rank tbody td:nth-child(1)")
        assert (await ranks.all_inner_texts())[:3] == ["1", "2", "3"]

        await page.get_by_role("button", name="Next ›").click()
        await page.wait_for_function(
            "document.querySelector('#rank-range').textContent === '51–100 of 20000'"
        )
        assert (await ranks.all_inner_texts())[0] == "51"
        assert await page.get_by_role("button", name="‹ Previous").is_enabled()

        # A market's rank, found as you type (no Enter).
        await page.get_by_label("Find a market's rank").press_sequentially("s12345")
        await page.wait_for_function(
            "document.querySelector('#rank tbody td:nth-child(2)')?.textContent"
            " === 'bitfinex:s12345usd'"
        )
        assert await rows.count() == 1
        assert (await ranks.all_inner_texts()) == ["12346"]
        assert await page.locator("#rank-pages").is_hidden()
        await page.get_by_label("Find a market's rank").fill("")
        await page.wait_for_function(
            "document.querySelector('#rank-range').textContent === '1–50 of 20000'"
        )

        # The picker suggests only what matches what is typed.
        await page.get_by_label("Add a market").press_sequentially("s1999")
        options = page.locator("#market-list option")
        await page.wait_for_function("document.querySelectorAll('#market-list option').length")
        values = [await o.get_attribute("value") for o in await options.all()]
        assert 0 < len(values) <= 20
        assert all(v and "s1999" in v for v in values)
        await page.locator("#chart canvas").first.wait_for()

    histories = [url for url in watched.requested if "/history" in url]
    assert histories and all("s00000usd" in url for url in histories), histories
    assert watched.errors == []
    largest = max(sizes.values())
    assert largest < 4_000_000, sizes  # /symbols: the latest of each market, not history
    print(
        f"\ndashboard at {MARKETS:,} markets: rank table shown {shown:.1f} s after navigation; "
        f"largest answer {largest / 1e6:.1f} MB ({max(sizes, key=lambda u: sizes[u])})"
    )
