"""GET a source's JSON within a deadline, classifying every failure a real feed shows."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from common.errors import TrackerError
from common.retry import Backoff, Retry, retry


class SourceError(TrackerError):
    """A source answered something no retry will fix (a 4xx other than 429)."""


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
) -> Any:
    """The parsed JSON at `url`, retried on 429/5xx/timeouts/bad bodies until `deadline`."""

    async def attempt() -> Any:
        left = min(deadline - time.monotonic(), request_timeout)
        if left <= 0:
            raise Retry("no time left in this tick")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=left)) as response:
                body = await response.read()
                status = response.status
                hint = retry_after(response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise Retry(f"timed out after {left:.1f} s") from exc
        except aiohttp.ClientError as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise Retry("rate limited (429)", hint)
        if status >= 500:
            raise Retry(f"server error {status}", hint)
        if status >= 400:
            raise SourceError(f"{url}: HTTP {status}: {body[:200]!r}")
        try:
            return json.loads(body)
        except ValueError as exc:
            kind = "an HTML page" if body.lstrip()[:1] == b"<" else "a body that is not JSON"
            raise Retry(f"status {status} with {kind} ({len(body)} bytes)") from exc

    return await retry(
        attempt,
        f"GET {url}",
        backoff=backoff or Backoff(base=0.5, cap=10),
        attempts=10,
        deadline=deadline,
    )
