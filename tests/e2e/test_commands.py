"""The console commands as a user runs them: `tracker fetch --once`, and `tracker up` with
no exchange reachable (readiness explains; Ctrl-C stops everything with exit 0)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common import aws
from common.db import Store
from common.models import Market
from common.schema import init_db
from demo.exchange import running
from tests.conftest import make_settings
from tests.e2e.conftest import TRACKER, Processes
from tests.e2e.test_alerts_e2e import control
from tracker import dynamodb_local


@pytest.mark.parametrize(
    "command", [[*TRACKER, "fetch", "--once"], [sys.executable, "-m", "fetcher", "--once"]]
)
async def test_fetch_once_command_writes_the_current_tick(
    dynamodb_url: str, processes: Processes, command: list[str]
) -> None:
    """`tracker fetch --once` (and the fetcher standing alone, `python -m fetcher --once`)
    exits 0 after writing every served market at the current tick."""
    settings = make_settings(dynamodb_url)
    async with running(pairs=50) as (_, url):
        env = {
            "AWS_ENDPOINT_URL": dynamodb_url,
            "TRACKER_TABLE_PREFIX": settings.table_prefix,
            "TRACKER_BITFINEX_URL": url,
        }
        assert processes.start("init", [*TRACKER, "init-db"], env).wait(60) == 0
        fetch = processes.start("fetch", command, env)
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
    """With the exchange unreachable, `tracker up` starts everything; /readyz stays ready and
    says why there are no figures; the fetcher says what it does next; SIGINT stops all
    children, exit 0."""
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
                if status == 200 and "no figures yet" in body["checks"].get("data", ""):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        # Ready (DynamoDB answers), degraded, and saying why there are no figures.
        assert status == 200 and body["status"] == "degraded", log.read_text()[-3000:]
        assert body["checks"]["dynamodb"] == "ok"
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


def test_tracker_up_demo_shows_data_rank_and_an_alert(tmp_path: Path) -> None:
    """`tracker up --demo` as the README walks a newcomer through it: symbols from both
    sources, history and a rank within a few ticks, an alert after a 3.5× spike asked of the
    demo exchange, and Ctrl-C stops everything with exit 0. Demo data gets its own tables."""
    api, ddb, demo = (dynamodb_local.free_port() for _ in range(3))
    env = os.environ | {
        "TRACKER_PORT": str(api),
        # Faster than the demo's own 5 s clock, so the test takes seconds, not minutes; not
        # faster than 3 s: a tick is 785 points (420 markets, 365 pairs and assets), and
        # DynamoDB Local on disk takes about 400 a second.
        "TRACKER_FETCH_INTERVAL": "3",
        "TRACKER_ALERT_WINDOW": "30",
    }
    for name in ("AWS_ENDPOINT_URL", "TRACKER_TABLE_PREFIX"):
        env.pop(name, None)
    log = tmp_path / "up.log"
    base = f"http://127.0.0.1:{api}"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [*TRACKER, "up", "--demo", "--port", str(ddb), "--demo-port", str(demo)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def until(what: str, check: Callable[[], bool], within: float = 90) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                if check():
                    return
            time.sleep(0.5)
        raise AssertionError(f"{what}: not seen within {within} s\n{log.read_text()[-3000:]}")

    try:
        until("markets of both sources", lambda: {"bitfinex", "kraken"} <= exchanges(base))
        until("a rank", lambda: _get(f"{base}/rank?limit=1")[1]["total"] > 100)
        until("30 s of history", lambda: len(history(base)) >= 11)
        answer = control(f"http://127.0.0.1:{demo}", "/control/price", SPIKE)
        until("the alert", lambda: _get(f"{base}/alerts")[1]["alerts"] != [], within=45)
        alert = _get(f"{base}/alerts")[1]["alerts"][0]
        assert alert["id"].startswith("bitfinex:btcusd:") and alert["price"] == answer["price"]
        assert 3.3 < alert["ratio"] < 3.7, alert
        text = log.read_text()
        assert "created table demo-points" in text and "a tick every 3 s" in text, text[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, log.read_text()[-3000:]


SPIKE = {"symbol": "btcusd", "factor": 3.5}  # the README's curl


def exchanges(base: str) -> set[str]:
    return {s["exchange"] for s in _get(f"{base}/symbols")[1]["symbols"]}


def history(base: str) -> list[Any]:
    points: list[Any] = _get(f"{base}/symbols/btcusd/history")[1]["points"]
    return points


async def test_serve_with_workers_answers_from_each_and_stops_cleanly(
    dynamodb_url: str, processes: Processes
) -> None:
    """`tracker serve --workers 2`: two processes answering on one port; SIGTERM stops both
    and the command exits 0."""
    settings = make_settings(dynamodb_url)
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
    port = dynamodb_local.free_port()
    env = {
        "AWS_ENDPOINT_URL": dynamodb_url,
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_PORT": str(port),
    }
    server = processes.start("serve", [*TRACKER, "serve", "--workers", "2"], env)
    dynamodb_local.wait_for_port(port)
    # The supervisor binds the port before it starts its workers: wait for both.
    deadline = time.monotonic() + 30
    while len(children := _children(server.pid)) < 2:
        assert time.monotonic() < deadline, f"workers started: {children}"
        time.sleep(0.1)
    assert len(children) == 2
    deadline = time.monotonic() + 20
    answers: list[int] = []
    while len(answers) < 20:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                answers.append(r.status)
        except OSError:
            assert time.monotonic() < deadline, "no answer"
            time.sleep(0.2)
    assert set(answers) == {200}
    assert processes.stop("serve", 20) == 0
    assert not any(Path(f"/proc/{child}").exists() for child in children)


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
