"""The suite's fixtures: one real DynamoDB Local per test module → settings → a clean table
prefix per test. The helpers they use, and the tests use, are in tests/helpers/."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from common.db import Store
from common.settings import Settings
from tests.helpers.processes import Processes
from tests.helpers.running import running_demo
from tests.helpers.tables import make_settings, tables
from tracker import dynamodb_local

# The next module's DynamoDB Local, started in a thread while this module runs (about 2 s a
# start, some 25 modules).
AHEAD: list[Future[tuple[str, subprocess.Popen[bytes]]]] = []
STARTER = ThreadPoolExecutor(1, thread_name_prefix="dynamodb-local")


def _start(log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = dynamodb_local.free_port()
    return f"http://127.0.0.1:{port}", dynamodb_local.start(port, None, log)


@pytest.fixture(scope="module")
def dynamodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """In memory, fresh for each module (2 s to start: the next one is started while this
    module runs). DynamoDB Local slows down as stream records pile up, in any table: after
    100,000 points written to one table with a stream, 420 points written to another took
    14 s instead of 0.6 s, and reading them back 15.7 s instead of 1.3 s (without a stream: no
    slowdown). One for the whole session made the last modules four to five times slower
    than alone."""
    if AHEAD:
        url, process = AHEAD.pop().result()
    else:
        url, process = _start(tmp_path_factory.mktemp("ddb") / "dynamodb-local.log")
    AHEAD.append(STARTER.submit(_start, tmp_path_factory.mktemp("ddb") / "dynamodb-local.log"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session", autouse=True)
def _no_instance_left() -> Iterator[None]:
    """The instance started for a module that never came is stopped with the session."""
    yield
    for ahead in AHEAD:
        _, process = ahead.result()
        process.terminate()
        process.wait(10)
    STARTER.shutdown()


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
    async with tables(settings) as made:
        yield made


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Any, str]]:
    async with running_demo() as running:
        yield running
