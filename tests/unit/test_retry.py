"""The one retry helper: its delays (exponential, capped, jittered), a server's Retry-After
taken as it is, the attempts and the deadline it never sleeps past."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.retry import Backoff, GaveUp, Retry, retry


@given(
    base=st.floats(0.01, 5),
    cap=st.floats(0.1, 60),
    factor=st.floats(1, 4),
    jitter=st.floats(0, 0.5),
    n=st.integers(0, 40),
)
def test_delays_grow_to_the_cap_within_the_jitter(
    base: float, cap: float, factor: float, jitter: float, n: int
) -> None:
    """The nth delay is min(cap, base·factor^n), within ± jitter of it: never more than the
    cap's own jitter above the cap, however many attempts."""
    backoff = Backoff(base=base, cap=cap, factor=factor, jitter=jitter)
    delays = [backoff.next_delay() for _ in range(n + 1)]
    plain = min(cap, base * factor**n)
    assert plain * (1 - jitter) - 1e-9 <= delays[n] <= plain * (1 + jitter) + 1e-9
    assert max(delays) <= cap * (1 + jitter) + 1e-9
    assert backoff.attempt == n + 1
    backoff.reset()
    first = min(cap, base)
    assert first * (1 - jitter) - 1e-9 <= backoff.next_delay() <= first * (1 + jitter) + 1e-9


@given(hint=st.floats(0, 3600), attempts=st.integers(0, 20))
def test_a_retry_after_hint_is_the_delay_as_given(hint: float, attempts: int) -> None:
    """A server's Retry-After is waited as it is: not capped, not jittered; it still counts
    as an attempt."""
    backoff = Backoff(cap=1.0, jitter=0.5, attempt=attempts)
    assert backoff.next_delay(hint) == hint
    assert backoff.attempt == attempts + 1


class Flaky:
    """An operation failing `failures` times (with `hint` as its Retry-After), then 42."""

    def __init__(self, failures: int, hint: float | None = None) -> None:
        self.failures, self.hint, self.calls = failures, hint, 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise Retry(f"failure {self.calls}", self.hint)
        return 42


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What `retry` sleeps, recorded instead of slept."""
    delays: list[float] = []

    async def sleep(delay: float, *_: Any) -> None:
        delays.append(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return delays


async def test_retry_sleeps_the_hint_and_succeeds(slept: list[float]) -> None:
    op = Flaky(2, hint=7.5)
    assert await retry(op, "op", backoff=Backoff(cap=1.0)) == 42
    assert slept == [7.5, 7.5] and op.calls == 3


async def test_retry_gives_up_after_its_attempts_with_the_last_cause(slept: list[float]) -> None:
    op = Flaky(10)
    with pytest.raises(GaveUp, match="gave up after 3 attempt") as gave_up:
        await retry(op, "op", backoff=Backoff(base=1.0, jitter=0.0), attempts=3)
    assert op.calls == 3 and slept == [1.0, 2.0]
    assert str(gave_up.value.cause) == "failure 3"


async def test_retry_never_sleeps_past_its_deadline(slept: list[float]) -> None:
    """A wait that would end after the deadline is not started: it gives up at once."""
    now = [100.0]
    op = Flaky(10, hint=4.0)
    with pytest.raises(GaveUp, match="gave up after 1 attempt"):
        await retry(op, "op", attempts=5, deadline=103.0, clock=lambda: now[0])
    assert slept == [] and op.calls == 1


async def test_anything_but_retry_propagates_at_once(slept: list[float]) -> None:
    async def broken() -> int:
        raise KeyError("not retryable")

    with pytest.raises(KeyError):
        await retry(broken, "op")
    assert slept == []
