"""`tracker healthcheck`: what a container's HEALTHCHECK runs, read from the liveness file a
worker touches on every turn of its loop, or from the service's /healthz."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from common.lifecycle import alive_file, touch_alive
from common.settings import Settings
from tracker.dynamodb_local import free_port
from tracker.healthcheck import check


@pytest.fixture
def settings() -> Settings:
    return Settings(worker_id=f"test/{uuid.uuid4().hex}", fetch_interval=60, port=free_port())


@pytest.mark.parametrize("role", ["fetcher", "alerter"])
def test_a_worker_is_alive_while_it_touches_its_file(role: str, settings: Settings) -> None:
    """No file yet: not alive; just touched: alive; untouched past the limit: stuck."""
    assert check(role, settings) == 1
    touch_alive(role, settings.worker_id)
    path = alive_file(role, settings.worker_id)
    try:
        assert check(role, settings) == 0
        old = time.time() - 200  # past both limits: 60 s (alerter), 2 × 60 + 30 s (fetcher)
        os.utime(path, (old, old))
        assert check(role, settings) == 1
    finally:
        path.unlink()


def test_the_service_is_not_alive_when_nothing_answers(settings: Settings) -> None:
    """Nothing listening on TRACKER_PORT: the service check fails."""
    assert check("service", settings) == 1
