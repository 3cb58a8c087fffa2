"""The console commands as a user runs them: `tracker fetch --once`, and `tracker up` with
no exchange reachable (readiness explains; Ctrl-C stops everything with exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.models import Market
from demo.exchange import running
from tests.helpers.exchange import control
from tests.helpers.processes import TRACKER, Processes, answer
from tests.helpers.tables import make_settings, tables
from tests.helpers.waiting import until, wait_for
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
        # The demo answers from this test's event loop: wait without blocking it.
        await wait_for(lambda: fetch.poll() is not None, 90, "fetch --once exits")
        assert fetch.returncode == 0, processes.log("fetch")
    async with tables(settings, create=False) as store:
        latest = await store.latest_point(Market("bitfinex", "btcusd"))
    assert latest is not None and latest.t % 60 == 0 and time.time() - latest.t < 120


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

    def tail() -> str:
        return log.read_text()[-3000:]

    try:
        # Ready (DynamoDB answers), degraded, and saying why there are no figures.
        last: list[Any] = []

        def readyz() -> Any:
            last[:] = answer(f"http://127.0.0.1:{api}/readyz")
            return "no figures yet" in last[1]["checks"].get("data", "") and last

        status, body = until(readyz, 90, "/readyz: no figures yet", lambda: (last, tail()))
        assert status == 200 and body["status"] == "degraded", body
        assert body["checks"]["dynamodb"] == "ok"
        # The supervisor says so once its own /healthz probe answers (it polls every 0.5 s).
        expected = ("not fetched", "next try at tick", "ready: API http://127.0.0.1")
        until(lambda: all(e in log.read_text() for e in expected), 30, f"{expected} logged", tail)
        assert (tmp_path / "var" / "dynamodb").is_dir()

        # A child that crashes is started again, after a delay that doubles while it keeps
        # crashing soon after its start.
        def crash(delay: int) -> None:
            (alerter,) = until(lambda: _running(up.pid, "alert"), 30, "an alerter", tail)
            os.kill(alerter, signal.SIGKILL)
            restarting = f"alerter exited with -9; restarting in {delay} s"
            until(lambda: restarting in log.read_text(), 30, restarting, tail)
            until(lambda: _running(up.pid, "alert") not in ([], [alerter]), 30, "restarted", tail)

        crash(1)
        crash(2)
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
        "TRACKER_ALERT_WINDOW": "15",
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

    def seen(what: str, check: Callable[[], Any], within: float = 90) -> None:
        # Until the first tick is stored, the routes answer 404s and 503s.
        until(check, within, what, lambda: log.read_text()[-3000:], (OSError, KeyError))

    try:
        seen("markets of both sources", lambda: {"bitfinex", "kraken"} <= exchanges(base))
        seen("a rank", lambda: answer(f"{base}/rank?limit=1")[1].get("total", 0) > 100)
        seen("15 s of history", lambda: len(history(base)) >= 6)
        spiked = control(f"http://127.0.0.1:{demo}", "/control/price", SPIKE)
        seen("the alert", lambda: answer(f"{base}/alerts")[1]["alerts"] != [], within=45)
        alert = answer(f"{base}/alerts")[1]["alerts"][0]
        assert alert["id"].startswith("bitfinex:btcusd:") and alert["price"] == spiked["price"]
        assert 3.3 < alert["ratio"] < 3.7, alert
        text = log.read_text()
        assert "created table demo-points" in text and "a tick every 3 s" in text, text[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, log.read_text()[-3000:]


SPIKE = {"symbol": "btcusd", "factor": 3.5}  # the README's curl


def exchanges(base: str) -> set[str]:
    return {s["exchange"] for s in answer(f"{base}/symbols")[1]["symbols"]}


def history(base: str) -> list[Any]:
    points: list[Any] = answer(f"{base}/symbols/btcusd/history")[1]["points"]
    return points


async def test_serve_with_workers_answers_from_each_and_stops_cleanly(
    dynamodb_url: str, processes: Processes
) -> None:
    """`tracker serve --workers 2`: two processes answering on one port (each answer names
    its process: both workers are seen); SIGTERM stops both and the command exits 0."""
    settings = make_settings(dynamodb_url)
    async with tables(settings):
        pass
    port = dynamodb_local.free_port()
    env = {
        "AWS_ENDPOINT_URL": dynamodb_url,
        "TRACKER_TABLE_PREFIX": settings.table_prefix,
        "TRACKER_PORT": str(port),
    }
    server = processes.start("serve", [*TRACKER, "serve", "--workers", "2"], env)
    dynamodb_local.wait_for_port(port)
    # The supervisor binds the port before it starts its workers: wait for both.
    children = until(lambda: len(c := _children(server.pid)) == 2 and c, 30, "two workers started")
    answered: set[int] = set()

    def healthz() -> bool:
        status, body = answer(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert status == 200, body
        answered.add(body["process"])
        return answered >= set(children)

    until(healthz, 60, "an answer from each worker", lambda: (answered, children))
    assert answered == set(children)
    assert processes.stop("serve", 20) == 0
    assert not any(Path(f"/proc/{child}").exists() for child in children)


def _running(parent: int, command: str) -> list[int]:
    """The children of `parent` running `tracker <command>`."""
    found = []
    for child in _children(parent):
        try:
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"tracker" in args and command.encode() in args:
            found.append(child)
    return found


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
