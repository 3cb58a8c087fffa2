"""Waiting on a condition, never on the clock: each wait has a deadline and fails saying what
it waited for and what it last saw."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

POLL = 0.05


async def wait_for(
    condition: Any, timeout: float, what: str = "condition", seen: Callable[[], Any] | None = None
) -> Any:
    """Poll `condition` (sync or async) until it is truthy, and return that value; fail with
    `what` (and `seen()`, what there was to see, when given) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"; last seen: {seen()}" if seen is not None else ""
            raise AssertionError(f"{what} not met within {timeout} s{detail}")
        await asyncio.sleep(POLL)


def until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    seen: Callable[[], Any] | None = None,
    not_yet: tuple[type[Exception], ...] = (OSError,),
) -> Any:
    """`wait_for` for synchronous tests: poll until truthy and return the value; fail with
    `what` (and `seen()`, what there was to see, when given) after `timeout` seconds.
    An exception of `not_yet` from the condition (by default OSError: a process not
    listening yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = condition()
        except not_yet as e:
            value, error = None, e
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = seen() if seen is not None else error
            raise AssertionError(f"{what} not met within {timeout} s; last seen: {detail}")
        time.sleep(POLL * 4)
