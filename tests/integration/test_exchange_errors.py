"""The exchanges' error answers and shapes, end to end: the fetcher on DynamoDB Local against the
demo exchange serving them. Maintenance pauses the source and the log quotes the exchange; a
permanent error is asked once; an empty answer is a failed fetch; every Cryptowatch shape
stores exactly the served markets; a backfill during maintenance fails, never "no trades"."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from common.models import Market
from common.ticks import tick_floor
from fetcher.backfill import Backfill
from fetcher.worker import Fetcher
from tests.helpers.exchange import served_markets, stored_at
from tests.helpers.running import demo_fetcher, running_demo
from tests.helpers.ticks import fresh_tick


@pytest.fixture
async def rig(dynamodb_url: str) -> AsyncIterator[tuple[Fetcher, Any, str]]:
    """(fetcher, demo exchange, demo URL), both sources on the demo, 3 s ticks."""
    async with (
        running_demo(pairs=40) as (exchange, url),
        demo_fetcher(dynamodb_url, url, fetch_interval=3) as fetcher,
    ):
        yield fetcher, exchange, url


async def test_maintenance_pauses_the_source_and_quotes_the_exchange(
    rig: tuple[Fetcher, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """["error", 20060, "maintenance"]: a failed fetch by reason `maintenance`, the log quotes
    Bitfinex, the source is left alone for a minute (not asked, counted), the other source's
    points are written."""
    fetcher, exchange, _ = rig
    exchange.add_fault("bitfinex", "maintenance", 2, None)
    t = await fresh_tick(3)
    with caplog.at_level(logging.WARNING):
        assert not await fetcher.fetch_once(t)
        assert not await fetcher.fetch_once(t + 3)
    figures = fetcher.figures.sources["bitfinex"]
    assert figures.failed == {"maintenance": 2} and figures.failures == 2
    assert "bitfinex says 20060: 'maintenance'" in caplog.text
    assert caplog.text.count("in maintenance") == 1  # said once, at the start of the pause
    assert len(exchange.faults["bitfinex"]) == 1  # the second tick asked nothing
    assert await fetcher.store.get_point(Market("kraken", "btcusd"), t) is not None
    assert await fetcher.store.get_point(Market("bitfinex", "btcusd"), t) is None


async def test_a_permanent_error_is_asked_once(
    rig: tuple[Fetcher, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 carrying ["error", 10020, "symbol: invalid"] is not retried: one request, one line
    quoting the exchange, a failed fetch by reason `rejected`."""
    fetcher, exchange, _ = rig
    exchange.add_fault("bitfinex", "invalid", 3, None)
    with caplog.at_level(logging.ERROR):
        assert not await fetcher.fetch_once(await fresh_tick(3))
    assert len(exchange.faults["bitfinex"]) == 2  # one consumed: no retry
    assert fetcher.figures.sources["bitfinex"].failed == {"rejected": 1}
    assert "'symbol: invalid'" in caplog.text and "not retried" in caplog.text


async def test_rate_limit_arrays_are_retried(rig: tuple[Fetcher, Any, str]) -> None:
    """["error", 11010, "ratelimit: error"] and "Out of allowance" are waited out in the
    tick: nothing missing, nothing failed."""
    fetcher, exchange, _ = rig
    for source in ("bitfinex", "cryptowatch"):
        exchange.add_fault(source, "ratelimit-array", 1, None)
    t = tick_floor(time.time(), 3) + 3
    assert await fetcher.fetch_once(t)
    expected = served_markets(exchange)
    assert await stored_at(fetcher.store, expected, t) == expected
    assert fetcher.figures.sources["bitfinex"].failures == 0


async def test_an_empty_answer_after_markets_is_a_failed_fetch(
    rig: tuple[Fetcher, Any, str],
) -> None:
    """The source had markets last tick and answers none now: counted as `empty`, not as a
    tick fetched with 0 quotes."""
    fetcher, exchange, _ = rig
    t = await fresh_tick(3)
    assert await fetcher.fetch_once(t)
    exchange.add_fault("bitfinex", "empty", 1, None)
    assert not await fetcher.fetch_once(t + 3)
    assert fetcher.figures.sources["bitfinex"].failed == {"empty": 1}


@pytest.mark.parametrize(
    "shape",
    [
        {"keys": "legacy"},
        {"page_size": 25},
        {"summaries_by": "id"},
        {"keys": "legacy", "page_size": 7, "summaries_by": "id"},
    ],
    ids=lambda shape: ",".join(f"{k}={v}" for k, v in shape.items()),
)
async def test_every_cryptowatch_shape_stores_the_served_markets(
    rig: tuple[Fetcher, Any, str], shape: dict[str, Any]
) -> None:
    """Keys without `market:`, answers in pages, summaries keyed by id: the stored points are
    exactly the served markets with their volumes, and no row is dropped without a count."""
    fetcher, exchange, _ = rig
    exchange.cw_keys = shape.get("keys", "market")
    exchange.cw_page_size = shape.get("page_size", 0)
    exchange.cw_summaries_by = shape.get("summaries_by", "market")
    t = await fresh_tick(3)
    assert await fetcher.fetch_once(t)
    expected = served_markets(exchange)
    direct = [k for k in exchange.cryptowatch if k.startswith("bitfinex:")]  # fetched directly
    elsewhere = len(exchange.cryptowatch) - len(direct)
    assert len([m for m in expected if m.exchange != "bitfinex"]) == elsewhere
    assert await stored_at(fetcher.store, expected, t) == expected
    cryptowatch = fetcher.figures.sources["cryptowatch"]
    assert cryptowatch.skipped == 0 and cryptowatch.ignored == len(direct) + 1  # + the index
    assert cryptowatch.figures["allowance_remaining"] > 0


async def test_backfill_during_maintenance_fails_instead_of_finding_no_trades(
    rig: tuple[Fetcher, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A maintenance answer to the candles request fails that market, quoting Bitfinex."""
    fetcher, exchange, _ = rig
    exchange.add_fault("candles", "maintenance", 1, None)
    minutes = fetcher.settings.model_copy(update={"fetch_interval": 60})  # candles fill minutes
    job = Backfill(minutes, fetcher.store, fetcher.http, per_minute=6000)
    now = time.time()
    with caplog.at_level(logging.ERROR):
        summary = await job.run([Market("bitfinex", "btcusd")], now - 600, now)
    assert summary.failed == ["bitfinex:btcusd"] and summary.written == 0
    assert "20060: 'maintenance'" in caplog.text
