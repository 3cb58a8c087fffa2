"""`tracker up`: the embedded run. DynamoDB Local, tables, fetcher, service, alerter and the
delivery worker as supervised children with prefixed logs; a crashed child restarts with
backoff; Ctrl-C stops everything in order and exits 0."""

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

from common.lifecycle import sleep_unless, stop_on_signals
from common.log import setup_logging
from common.retry import Backoff
from common.sealed import new_secret_key
from common.settings import Settings, load_or_exit
from tracker import dynamodb_local

log = logging.getLogger("tracker.up")
# `--demo` runs the clock 12× faster, so that a newcomer sees a rank after two ticks and can
# make an alert within three minutes; every window keeps the shape of the real one (a rank
# window of 1,440 ticks, an alert window of 60 needing 30). Its own table prefix keeps the
# demo's prices out of real data. Each can still be overridden from the environment.
DEMO_DEFAULTS = {
    "TRACKER_TABLE_PREFIX": "demo",
    "TRACKER_FETCH_INTERVAL": "5",
    "TRACKER_RANK_WINDOW": "7200",
    "TRACKER_ALERT_WINDOW": "300",
    "TRACKER_ALERT_COOLDOWN": "300",
    "TRACKER_RETENTION": "50400",
    "TRACKER_STALE_AFTER": "300",
}
STOP_GRACE = 30.0  # longer than the fetcher's flush (fetcher/worker.py FLUSH_GRACE)
DATA = Path("var/dynamodb")  # kept between runs; `make clean` removes it
# The fetcher's spool and the alerter's checkpoint belong with the data they describe: under
# var/ too, not in the temp directory, where a reboot loses them and another checkout's run
# would resume them into its own tables.
SPOOL, STATE = Path("var/spool"), Path("var/state")
# The key channel secrets are sealed under: made at the first start, kept beside the data
# (without it the sealed secrets in var/dynamodb cannot be opened).
SECRET_KEY = Path("var/secret.key")


def secret_key(path: Path = SECRET_KEY) -> str:
    """The embedded run's TRACKER_SECRET_KEY: read from `path`, made there (0600) at first."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_secret_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    log.info("made %s: the key channel secrets are sealed with (keep it with var/)", path)
    return key


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
    return [sys.executable, "-m", "tracker", *args]


def _environment(demo: int | None, dynamodb_port: int) -> dict[str, str]:
    """The children's environment: the caller's, plus what the embedded run implies."""
    env = dict(os.environ)
    defaults = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dynamodb_port}",
        "PYTHONUNBUFFERED": "1",
        "TRACKER_SPOOL_DIR": str(SPOOL.resolve()),
        "TRACKER_STATE_DIR": str(STATE.resolve()),
    }
    if not env.get("TRACKER_SECRET_KEY"):
        env["TRACKER_SECRET_KEY"] = secret_key()
    if demo is not None:
        demo_url = f"http://127.0.0.1:{demo}"
        defaults |= DEMO_DEFAULTS | {"TRACKER_ALLOW_TARGETS": "127.0.0.1/32"}
        env |= {
            "TRACKER_SOURCES": "bitfinex,cryptowatch",
            "TRACKER_BITFINEX_URL": demo_url,
            "TRACKER_CRYPTOWATCH_URL": demo_url,
        }
    for name, value in defaults.items():
        if not env.get(name):  # an empty variable counts as unset, as in the settings
            env[name] = value
    return env


def _probe(url: str) -> None:
    """GET `url`; raises OSError unless it answers 2xx/3xx."""
    with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own http://host:port)
        pass


async def _ready(url: str, stop: asyncio.Event, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not stop.is_set():
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_probe, url)
            return True
        await sleep_unless(stop, 0.5)
    return False


async def run(demo: int | None, dynamodb_port: int, settings: Settings, data: Path) -> int:
    """Run everything until SIGINT/SIGTERM; `demo` is the demo exchange's port, if any."""
    stop = stop_on_signals()
    env = dict(os.environ)
    children: list[Child] = [
        Child("dynamodb-local", dynamodb_local.command(dynamodb_port, data), env),
    ]
    if demo is not None:
        children.append(Child("demo-exchange", _tracker("demo-exchange", "--port", str(demo)), env))
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
        for name, command in (
            ("service", "serve"),
            ("alerter", "alert"),
            ("notifier", "deliver"),
            ("fetcher", "fetch"),
        )
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
        if demo is not None:
            log.info(
                "demo: a tick every %d s; ranks after two ticks, alerts possible after %d s. "
                "Make BTC/USD jump 3.5× at the next tick: curl -XPOST 127.0.0.1:%d/control/price "
                "-H 'content-type: application/json' -d '%s'",
                settings.fetch_interval,
                settings.min_points * settings.fetch_interval,
                demo,
                '{"symbol": "btcusd", "factor": 3.5}',
            )
            log.info(
                "demo: across markets, see %s/pairs/btc-usd (five exchanges), %s/assets and the "
                "dashboard's Pairs view. Three markets misbehave on purpose: binance:ethusd drifts "
                "12 %% away (%s/pairs/eth-usd: outlier), coinbase-pro:xrpusd has a decimal slip "
                "(%s/pairs/xrp-usd: gross), bitstamp:ltcusd freezes (%s/pairs/ltc-usd: stale "
                "after TRACKER_STALE_AFTER, %d s)",
                base,
                base,
                base,
                base,
                base,
                settings.stale_after,
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
    log.info("stopping: fetcher, notifier, alerter, service, then the rest")
    for child in reversed(children):
        await child.stop()
    log.info("stopped")
    return 0


def _in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def up(demo: int | None = None, dynamodb_port: int = 8000) -> int:
    """`tracker up`; `demo`: also run the demo exchange on that port and fetch from it."""
    setup_logging(os.environ.get("TRACKER_LOG_LEVEL", "INFO"), "up")
    # This process is the children's parent: what it sets is what they inherit.
    os.environ.update(_environment(demo, dynamodb_port))
    settings = load_or_exit("tracker up")  # a bad configuration fails here, before anything starts
    ports = (dynamodb_port, settings.port, *([] if demo is None else [demo]))
    busy = [p for p in ports if _in_use(p)]
    if busy:
        log.error(
            "port(s) %s already in use (another `tracker up`?); stop it or pick other "
            "ports (--port for DynamoDB Local, TRACKER_PORT for the API, --demo-port)",
            busy,
        )
        return 1
    DATA.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(demo, dynamodb_port, settings, DATA.resolve()))
