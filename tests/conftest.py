"""One real DynamoDB Local per test module → settings → a clean table prefix per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from common.aws import dynamodb
from common.db import Store
from common.schema import init_db
from common.settings import Settings
from tests.e2e.conftest import Processes
from tracker import dynamodb_local

DATA = Path(__file__).parent / "data"
# Real answers of the exchanges, recorded by other public projects (each file's source in its
# README), beside the checkout as `shared/`: read from there, never copied into the project.
RECORDED = Path(__file__).resolve().parents[2] / "shared" / "recorded"


def load(source: str, name: str) -> Any:
    """A payload written in the real shapes, from tests/data/<source>/<name>.json."""
    return json.loads((DATA / source / f"{name}.json").read_text())


def recorded(source: str, name: str) -> Any:
    """A real recorded answer, from ../shared/recorded/<source>/<name>.json."""
    path = RECORDED / source / f"{name}.json"
    assert path.exists(), f"recorded answer {path} missing: is shared/ beside the checkout?"
    return json.loads(path.read_text())


def recorded_names(source: str) -> list[str]:
    return sorted(p.stem for p in (RECORDED / source).glob("*.json"))


class Pages:
    """A fake `get` serving answers by path (query strings included)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, path: str) -> Any:
        self.asked.append(path)
        return self.answers[path]


@pytest.fixture(scope="module")
def dynamodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """In memory, fresh for each module (2 s to start). DynamoDB Local slows down as stream
    records pile up, in any table: after 100,000 points written to one table with a stream,
    420 points written to another took 14 s instead of 0.6 s, and reading them back 15.7 s
    instead of 1.3 s (without a stream: no slowdown). One for the whole session made the
    last modules four to five times slower than alone."""
    port = dynamodb_local.free_port()
    log = tmp_path_factory.mktemp("ddb") / "dynamodb-local.log"
    process = dynamodb_local.start(port, None, log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def make_settings(dynamodb_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "aws_endpoint_url": dynamodb_url,
        "table_prefix": f"t{uuid.uuid4().hex[:12]}",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Real processes started with the project's commands, each logging to tmp_path; stopped
    (SIGTERM, then SIGKILL) after the test."""
    running = Processes(tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def settings(dynamodb_url: str) -> Settings:
    return make_settings(dynamodb_url)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    async with dynamodb(settings) as client:
        await init_db(client, settings)
        yield Store(client, settings)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[Any]:
    """The app with its real lifespan, and an httpx client on it (no alerter runs)."""
    import httpx

    from service.app import create_app

    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@asynccontextmanager
async def demo_fetcher(dynamodb_url: str, url: str, **overrides: Any) -> AsyncIterator[Any]:
    """A fetcher of both sources on the demo exchange at `url`, its tables fresh."""
    import aiohttp

    from fetcher.sources import build_sources
    from fetcher.worker import Fetcher

    settings = make_settings(
        dynamodb_url,
        sources=["bitfinex", "cryptowatch"],
        bitfinex_url=url,
        cryptowatch_url=url,
        fetch_timeout=1.0,
        **overrides,
    )
    async with aiohttp.ClientSession() as http, dynamodb(settings) as client:
        await init_db(client, settings)
        yield Fetcher(settings, Store(client, settings), http, build_sources(settings))


def running_demo(pairs: int = 300) -> Any:
    """The demo exchange in-process on a free port: (DemoExchange, base URL)."""
    from demo.exchange import running

    return running(pairs=pairs, seed=7, timeout_seconds=3.0)


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Any, str]]:
    async with running_demo() as running:
        yield running


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """A local HTTP endpoint recording every JSON POST: (bodies, apprise json:// URL)."""
    from demo.webhook import receiving

    received: list[dict[str, Any]] = []
    async with receiving(received.append) as url:
        yield received, url


@asynccontextmanager
async def running_deliverer(settings: Settings) -> AsyncIterator[Any]:
    """The delivery worker in-process on `settings`' tables, stopped afterwards."""
    import asyncio

    from notifier.worker import Deliverer

    stop = asyncio.Event()
    async with dynamodb(settings) as client:
        deliverer = Deliverer(settings, Store(client, settings))
        task = asyncio.create_task(deliverer.main(stop))
        try:
            yield deliverer
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            # The worker restricts apprise process-wide: give the rest of the session it all.
            from common.senders import unrestrict_apprise

            unrestrict_apprise()


async def wait_for(condition: Any, timeout: float, what: str = "condition") -> None:
    """Poll `condition` (sync or async) until true; fail with `what` after `timeout` seconds."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        await asyncio.sleep(0.05)
