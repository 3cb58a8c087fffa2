"""What every worker's lifecycle shares: stop on SIGTERM/SIGINT, sleep unless stopped, and a
liveness file a container healthcheck can read (`tracker healthcheck fetcher|alerter`)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import tempfile
import time
from pathlib import Path


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: the worker finishes its current step and exits 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    return stop.is_set()


def alive_file(name: str, worker_id: str) -> Path:
    """Where worker `name` proves it is alive: a file it touches on every step of its loop."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id)
    return Path(tempfile.gettempdir()) / f"tracker-{name}-{safe}.alive"


def touch_alive(name: str, worker_id: str) -> None:
    """Refresh the liveness file; never fails the worker (a read-only /tmp only loses the probe)."""
    with contextlib.suppress(OSError):
        alive_file(name, worker_id).touch()


def alive_age(name: str, worker_id: str) -> float | None:
    """Seconds since the worker last touched its liveness file; None if it never did."""
    try:
        return time.time() - alive_file(name, worker_id).stat().st_mtime
    except FileNotFoundError:
        return None
