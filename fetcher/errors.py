"""What an exchange can answer instead of data, as errors that keep its code and its words.

SourceError                    the answer is not data (a failed fetch, never "fetched 0")
├── ExchangeUnavailable        transient: rate limit, 5xx, "not ready" — retried within the tick
│   └── Maintenance            the exchange is in maintenance: the source pauses for a minute
├── ExchangeRejected           permanent: invalid parameters, unknown symbol — never retried
└── UnknownShape               an answer of no shape the parser knows (logged once, with a sample)

Each has a `reason`, the label of the failed-fetch metric. Bitfinex answers errors as arrays,
`["error", 20060, "maintenance"]` (often with HTTP 500), or as `{"error": "ERR_RATE_LIMIT"}`;
Cryptowatch as `{"error": "Out of allowance"}`. `classify` reads either.
"""

from __future__ import annotations

import re
from typing import Any

from common.errors import TrackerError

# Bitfinex error codes (docs.bitfinex.com, "Abbreviations Glossary" and "Errors"): transient
# ones; any other code (10020 ERR_PARAMS: "symbol: invalid", "limit: invalid"; 10100 auth …)
# will not change by retrying.
RATE_LIMIT_CODES = {11010}
MAINTENANCE_CODES = {20060}
TRANSIENT_CODES = {10000, 10001, 11000, 20051} | RATE_LIMIT_CODES | MAINTENANCE_CODES
# "ERR_RATE_LIMIT", "ratelimit: error", "Out of allowance" — not any word holding "rate".
RATE_LIMIT_WORDS = re.compile(r"rate[ _-]?limit|allowance")


class SourceError(TrackerError):
    reason = "error"

    def __init__(self, message: str, code: int | str | None = None, words: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.words = words


class ExchangeUnavailable(SourceError):
    reason = "unavailable"

    def __init__(
        self,
        message: str,
        code: int | str | None = None,
        words: str = "",
        reason: str = "unavailable",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code, words)
        self.reason = reason
        self.retry_after = retry_after


class Maintenance(ExchangeUnavailable):
    def __init__(self, message: str, code: int | str | None = None, words: str = "") -> None:
        super().__init__(message, code, words, reason="maintenance")


class ExchangeRejected(SourceError):
    reason = "rejected"


class UnknownShape(SourceError):
    reason = "unknown_shape"

    def __init__(self, what: str, payload: object) -> None:
        self.sample = sample(payload)
        super().__init__(f"{what}; the answer began: {self.sample}")


def sample(payload: object, size: int = 160) -> str:
    text = repr(payload)
    return text if len(text) <= size else text[:size] + "…"


def error_answer(payload: Any) -> tuple[int | str | None, str] | None:
    """(code, words) when the payload is an exchange's error answer, else None."""
    if isinstance(payload, list) and payload[:1] == ["error"]:
        code = payload[1] if len(payload) > 1 and isinstance(payload[1], int | str) else None
        words = str(payload[2]) if len(payload) > 2 else ""
        return code, words
    if isinstance(payload, dict) and "error" in payload and "result" not in payload:
        return None, str(payload["error"])
    return None


def classify(
    source: str, status: int, payload: Any, retry_after: float | None = None
) -> SourceError | None:
    """The error an answer stands for (any status), or None when it is data."""
    found = error_answer(payload)
    if found is None:
        if status == 429:
            return ExchangeUnavailable(
                f"{source}: rate limited (429)", reason="rate_limit", retry_after=retry_after
            )
        return None
    code, words = found
    said = f"{source} says {code}: {words!r}" if code is not None else f"{source} says {words!r}"
    lowered = words.lower()
    if code in MAINTENANCE_CODES or "maintenance" in lowered:
        return Maintenance(f"{said} (HTTP {status})", code, words)
    if status == 429 or code in RATE_LIMIT_CODES or RATE_LIMIT_WORDS.search(lowered):
        return ExchangeUnavailable(
            f"{said}: rate limited (HTTP {status})", code, words, "rate_limit", retry_after
        )
    if code in TRANSIENT_CODES or "temporarily" in lowered or "not ready" in lowered:
        return ExchangeUnavailable(f"{said} (HTTP {status})", code, words)
    if code is None and status >= 500:  # words alone, a server error: try again
        return ExchangeUnavailable(f"{said} (HTTP {status})", code, words)
    return ExchangeRejected(f"{said} (HTTP {status}): not retried", code, words)
