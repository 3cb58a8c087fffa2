"""The one retry helper: exponential backoff with jitter that honours server hints.

An operation signals a retryable failure by raising `Retry` (optionally with the server's
`Retry-After`); anything else propagates at once. The helper never sleeps past its deadline:
when the next wait would overrun it, it gives up with `GaveUp`, carrying the last cause.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from common.errors import StoreUnavailable, TrackerError
from common.lifecycle import sleep_unless

T = TypeVar("T")
log = logging.getLogger(__name__)


class Retry(Exception):
    """Raised by an operation to ask for another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class GaveUp(TrackerError):
    def __init__(self, what: str, attempts: int, cause: BaseException) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempt(s): {cause}")
        self.attempts = attempts
        self.cause = cause


@dataclass
class Backoff:
    """Delays of base·factor^n, capped, ± jitter; `reset()` after a success."""

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25
    attempt: int = field(default=0)

    def next_delay(self, hint: float | None = None) -> float:
        if hint is not None and hint >= 0:
            delay = hint
        else:
            delay = min(self.cap, self.base * self.factor**self.attempt)
            # Jitter spreads retries out; it needs no unpredictability.
            delay *= 1 + random.uniform(-self.jitter, self.jitter)  # noqa: S311
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


async def retry(
    op: Callable[[], Awaitable[T]],
    what: str,
    *,
    backoff: Backoff | None = None,
    attempts: int = 5,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `op` until it succeeds, `attempts` run out, or waiting would pass `deadline`."""
    backoff = backoff or Backoff()
    for attempt in range(1, attempts + 1):
        try:
            result = await op()
        except Retry as exc:
            delay = backoff.next_delay(exc.retry_after)
            if attempt == attempts:
                raise GaveUp(what, attempt, exc) from exc
            if deadline is not None and clock() + delay > deadline:
                log.warning("%s: %s; no time left before the deadline, giving up", what, exc)
                raise GaveUp(what, attempt, exc) from exc
            log.warning(
                "%s: %s; retrying in %.2f s (attempt %d/%d)",
                what,
                exc,
                delay,
                attempt + 1,
                attempts,
            )
            await asyncio.sleep(delay)
        else:
            backoff.reset()
            return result
    raise AssertionError("unreachable")  # pragma: no cover


async def until_answered(
    op: Callable[[], Awaitable[T]], stop: asyncio.Event, backoff: Backoff | None = None
) -> T | None:
    """Run `op` until DynamoDB answers it. While it is unavailable (StoreUnavailable) wait with
    backoff — the store's Outage logs the outage once — and try again; None once `stop` is
    set. Any other error propagates: a worker waits out outages, not mistakes."""
    backoff = backoff or Backoff(base=0.5, cap=10)
    while True:
        try:
            return await op()
        except StoreUnavailable:
            if await sleep_unless(stop, backoff.next_delay()):
                return None
