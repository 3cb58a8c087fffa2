"""The console commands as a user runs them: `tracker fetch --once`, and `tracker up` with
no exchange reachable (readiness explains; Ctrl-C stops everything with exit 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import aws, dynamodb_local
from common.db import Store
from common.models import Market
from demo.exchange import running
from tests.conftest import make_settings
from tests.e2e.conftest import TRACKER, Processes


async def test_fetch_once_command_writes_the_current_tick(
    dynamodb_url: str, processes: Processes
) -> None:
    """`tracker fetch --once` exits 0 after writing every served market at the current tick."""
    settings = make_settings(dynamodb_url)
    async with running(pairs=50) as (_, url):
        env = {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_BITFINEX_URL": url,
        }
        assert processes.start("init", [*TRACKER, "init-db"], env).wait(60) == 0
        fetch = processes.start("fetch", [*TRACKER, "fetch", "--once"], env)
        while fetch.poll() is None:  # the demo answers from this test's event loop
            import asyncio

            await asyncio.sleep(0.05)
        assert fetch.returncode == 0, processes.log("fetch")
    async with aws.dynamodb(settings) as client:
        latest = await Store(client, settings).latest_point(Market("bitfinex", "btcusd"))
    assert latest is not None and latest.t % 60 == 0 and time.time() - latest.t < 120


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tracker_up_offline_explains_and_stops_cleanly(tmp_path: Path) -> None:
    """With the exchange unreachable, `tracker up` starts everything; /readyz says why there
    is no data; the fetcher says what it does next; SIGINT stops all children, exit 0."""
    api, ddb = dynamodb_local.free_port(), dynamodb_local.free_port()
    env = os.environ | {
        "TRACKER_PORT": str(api),
        "TRACKER_BITFINEX_URL": "http://127.0.0.1:9",
        "TRACKER_FETCH_INTERVAL": "2",
        "TRACKER_FETCH_TIMEOUT": "0.5",
        "TRACKER_TABLE_PREFIX": "up",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [*TRACKER, "up", "--port", str(ddb)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        status, body = 0, dict[str, Any]()
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{api}/readyz")
                if status == 503 and "no data yet" in body["checks"].get("data", ""):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        assert status == 503 and body["checks"]["dynamodb"] == "ok", log.read_text()[-3000:]
        # The supervisor says so once its own /healthz probe answers (it polls every 0.5 s).
        expected = ("not fetched", "next try at tick", "ready: API http://127.0.0.1")
        deadline = time.monotonic() + 30
        while not all(e in log.read_text() for e in expected) and time.monotonic() < deadline:
            time.sleep(0.5)
        text = log.read_text()
        assert all(e in text for e in expected), (expected, text[-3000:])
        assert (tmp_path / "var" / "dynamodb").is_dir()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text().splitlines()[-1]
