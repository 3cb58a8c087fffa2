"""GET a source's JSON within a deadline, classifying every failure a real feed shows.

Transient failures (429, 5xx, timeouts, HTML or cut bodies, an exchange's "rate limit" or
"not ready") are retried with backoff within the tick; giving up ends in ExchangeUnavailable
with the last reason. Maintenance and permanent errors (an exchange's "invalid parameters")
are raised at once: retrying them only costs the exchange's patience.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from common.retry import Backoff, GaveUp, Retry, retry
from fetcher.errors import (
    ExchangeRejected,
    ExchangeUnavailable,
    Maintenance,
    SourceError,
    classify,
)

__all__ = ["SourceError", "get_json"]
_NOT_JSON = object()


def retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    deadline: float,
    request_timeout: float = 10.0,
    backoff: Backoff | None = None,
    source: str = "exchange",
) -> Any:
    """The parsed JSON at `url`, retried on transient failures until `deadline`."""
    reason = "unavailable"  # of the last retried failure

    def again(why: str, message: str, hint: float | None = None) -> Retry:
        nonlocal reason
        reason = why
        return Retry(message, hint)

    async def attempt() -> Any:
        left = min(deadline - time.monotonic(), request_timeout)
        if left <= 0:
            raise again("timeout", "no time left in this tick")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=left)) as response:
                body = await response.read()
                status = response.status
                hint = retry_after(response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise again("timeout", f"timed out after {left:.1f} s") from exc
        except aiohttp.ClientError as exc:
            raise again("network", f"{type(exc).__name__}: {exc}") from exc
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = _NOT_JSON
        error = classify(source, status, payload, hint) if payload is not _NOT_JSON else None
        if isinstance(error, Maintenance | ExchangeRejected):
            raise error
        if isinstance(error, ExchangeUnavailable):
            raise again(error.reason, str(error), error.retry_after) from error
        if status == 429:
            raise again("rate_limit", "rate limited (429)", hint)
        if status >= 500:
            raise again("server_error", f"server error {status}", hint)
        if status >= 400:
            raise ExchangeRejected(f"{url}: HTTP {status}: {body[:200]!r}", status)
        if payload is _NOT_JSON:
            kind = "an HTML page" if body.lstrip()[:1] == b"<" else "a body that is not JSON"
            raise again("not_json", f"status {status} with {kind} ({len(body)} bytes)")
        return payload

    try:
        return await retry(
            attempt,
            f"GET {url}",
            backoff=backoff or Backoff(base=0.5, cap=10),
            attempts=10,
            deadline=deadline,
        )
    except GaveUp as exc:
        raise ExchangeUnavailable(str(exc), reason=reason) from exc
