"""Real processes, each started with the project's own commands and environment, and the
HTTP calls a test makes to them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.settings import Settings
from tests.helpers.waiting import until, wait_for
from tracker import dynamodb_local

TRACKER = [sys.executable, "-m", "tracker"]
# The fetcher's line for each tick it finished (fetcher/worker.py).
TICK_DONE = re.compile(r"tick (\d+) done in [\d.]+ s: [^;]*; (\d+) pairs")


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                args,
                env=os.environ | env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).parents[2],
            )
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 40) -> int:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def tails(self, lines: int = 15) -> str:
        """The last lines of each running process's log, for a failure's message."""
        return "".join(
            f"\n--- {name}.log\n" + "\n".join(self.log(name).splitlines()[-lines:])
            for name in self.running
        )

    def stop_all(self) -> None:
        for name in list(self.running):
            try:
                self.stop(name, 10)
            except subprocess.TimeoutExpired:
                self.kill(name)


async def logged(
    processes: Processes, name: str, pattern: str, within: float, after: int = 0
) -> str:
    """Wait for a match of regex `pattern` in process `name`'s log beyond its first `after`
    ones, and return it."""
    found: list[str] = await wait_for(
        lambda: len(f := re.findall(pattern, processes.log(name))) > after and f,
        within,
        f"{pattern!r} {after + 1}× in {name}'s log",
        lambda: processes.log(name)[-3000:],
    )
    return str(found[after])


def ticks_done(log: str, min_pairs: int = 0) -> list[int]:
    """The ticks a fetcher's log says it finished, in order; only those with at least
    `min_pairs` pair figures when given."""
    return [int(t) for t, pairs in TICK_DONE.findall(log) if int(pairs) >= min_pairs]


@contextmanager
def api_processes(
    config: Settings,
    logs: Path,
    path: str,
    ready: Callable[[Any], bool],
    extra: dict[str, str] | None = None,
    deliver: bool = False,
) -> Iterator[str]:
    """`tracker alert` + `tracker serve` (+ `tracker deliver`) on `config`'s tables, with
    `extra` in their environment, yielded (base URL) once the JSON at `path` satisfies
    `ready`; stopped afterwards."""
    port = dynamodb_local.free_port()
    assert config.aws_endpoint_url
    env = {
        "AWS_ENDPOINT_URL": config.aws_endpoint_url,
        "TRACKER_TABLE_PREFIX": config.table_prefix,
        "TRACKER_PORT": str(port),
        "TRACKER_WORKER_ID": config.table_prefix,
    } | (extra or {})
    running = Processes(logs)
    running.start("alerter", [*TRACKER, "alert"], env)
    running.start("service", [*TRACKER, "serve"], env)
    if deliver:
        running.start("notifier", [*TRACKER, "deliver"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        answer_ready(base + path, ready, 90, running)
        yield base
    finally:
        running.stop_all()


def answer_ready(
    url: str, ready: Callable[[Any], bool], timeout: float, running: Processes | None = None
) -> Any:
    """Poll `url` until its JSON satisfies `ready`, and return it; past `timeout`, fail with
    the last answer and the tail of each running process's log."""
    seen: list[Any] = [None]

    def ready_answer() -> Any:
        status, seen[0] = answer(url, timeout=2)
        return seen[0] if status == 200 and ready(seen[0]) else None

    def what() -> str:
        logs = "" if running is None else running.tails()
        return f"{str(seen[0])[:500]}{logs}"

    return until(ready_answer, timeout, f"{url} ready", what)


def answer(
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
    method: str | None = None,
) -> tuple[int, Any]:
    """GET `url` (POST `body` as JSON when given): its status and JSON body, an HTTP error's
    included (null when it has none)."""
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"} | (headers or {}),
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:  # it holds the connection
            return error.code, json.loads(error.read() or b"null")


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 5) -> Any:
    """GET `url` (POST `body` as JSON when given) and the JSON answer; any status but 2xx
    fails with the answer."""
    status, got = answer(url, body, timeout=timeout)
    assert 200 <= status < 300, (url, status, got)
    return got
