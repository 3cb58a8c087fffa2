"""`tracker up`: the embedded run. DynamoDB Local, tables, fetcher, service and alerter as
supervised children with prefixed logs; a crashed child restarts with backoff; Ctrl-C stops
everything in order and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import dynamodb_local
from common.lifecycle import sleep_unless, stop_on_signals
from common.log import setup_logging
from common.retry import Backoff
from common.settings import Settings

log = logging.getLogger("tracker.up")
DEMO_PORT = 9000
STOP_GRACE = 15.0
DATA = Path("var/dynamodb")  # kept between runs; `make clean` removes it


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    restart: bool = True
    process: asyncio.subprocess.Process | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1, cap=30, jitter=0))
    started: float = 0.0
    relay: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.relay = asyncio.create_task(self._relay())

    async def _relay(self) -> None:
        assert self.process and self.process.stdout
        prefix = f"{self.name:>14} | "
        async for line in self.process.stdout:
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE)
        except TimeoutError:
            log.warning("%s did not stop within %.0f s; killing it", self.name, STOP_GRACE)
            self.process.kill()
            await self.process.wait()


def _tracker(*args: str) -> list[str]:
    return [sys.executable, "-m", "common.cli", *args]


def _environment(demo: bool, dynamodb_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dynamodb_port}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if demo:
        demo_url = f"http://127.0.0.1:{DEMO_PORT}"
        env |= {
            "TRACKER_SOURCES": "bitfinex,cryptowatch",
            "TRACKER_BITFINEX_URL": demo_url,
            "TRACKER_CRYPTOWATCH_URL": demo_url,
        }
    return env


def _probe(url: str) -> None:
    """GET `url`; raises OSError unless it answers 2xx/3xx."""
    with urllib.request.urlopen(url, timeout=1):
        pass


async def _ready(url: str, stop: asyncio.Event, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not stop.is_set():
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_probe, url)
            return True
        await sleep_unless(stop, 0.5)
    return False


async def run(demo: bool, dynamodb_port: int, settings: Settings, data: Path) -> int:
    stop = stop_on_signals()
    env = _environment(demo, dynamodb_port)
    children: list[Child] = [
        Child("dynamodb-local", dynamodb_local.command(dynamodb_port, data), env),
    ]
    if demo:
        children.append(
            Child("demo-exchange", _tracker("demo-exchange", "--port", str(DEMO_PORT)), env)
        )
    for child in children:
        await child.start()
    await asyncio.to_thread(dynamodb_local.wait_for_port, dynamodb_port, 60)
    init = Child("init-db", _tracker("init-db"), env, restart=False)
    await init.start()
    assert init.process
    if await init.process.wait() != 0:
        log.error("init-db failed; stopping")
        for child in reversed(children):
            await child.stop()
        return 1
    services = [
        Child(name, _tracker(command), env)
        for name, command in (("service", "serve"), ("alerter", "alert"), ("fetcher", "fetch"))
    ]
    for child in services:
        await child.start()
    children += services
    base = f"http://{settings.host}:{settings.port}"
    if await _ready(f"{base}/healthz", stop):
        log.info(
            "ready: API %s  ·  docs %s/docs  ·  readiness %s/readyz  (Ctrl-C stops)",
            base,
            base,
            base,
        )
    while not stop.is_set():
        for child in children:
            if child.process and child.process.returncode is not None and child.restart:
                if time.monotonic() - child.started > 60:
                    child.backoff.reset()
                delay = child.backoff.next_delay()
                log.warning(
                    "%s exited with %s; restarting in %.0f s",
                    child.name,
                    child.process.returncode,
                    delay,
                )
                if await sleep_unless(stop, delay):
                    break
                await child.start()
        await sleep_unless(stop, 0.5)
    log.info("stopping: fetcher, alerter, service, then the rest")
    for child in reversed(children):
        await child.stop()
    log.info("stopped")
    return 0


def _in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def up(demo: bool = False, dynamodb_port: int = 8000) -> int:
    setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "up")
    settings = Settings()  # a bad configuration fails here, before anything starts
    busy = [p for p in (dynamodb_port, settings.port, *([DEMO_PORT] if demo else [])) if _in_use(p)]
    if busy:
        log.error(
            "port(s) %s already in use (another `tracker up`?); stop it or pick other "
            "ports (--port for DynamoDB Local, TRACKER_PORT for the API)",
            busy,
        )
        return 1
    DATA.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(demo, dynamodb_port, settings, DATA.resolve()))
