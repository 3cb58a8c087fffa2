"""Errors of the shared layer.

TrackerError
├── StoreError              DynamoDB failed; keeps the AWS error code and the original cause
│   ├── StoreUnavailable    transient: unreachable, timed out, throttled, 5xx — retry with
│   │                       backoff (common.outage logs each outage once, start and end)
│   └── StoreMisconfigured  will not heal by waiting: no such table or stream, access denied,
│                           bad credentials or region — the process ends with one clear line
├── AlreadyDone             a conditional write found the item there already (idempotent duplicate)
└── NotFound                a market or item that does not exist
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base of every error the tracker raises on purpose."""


class StoreError(TrackerError):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.code = code


class StoreUnavailable(StoreError):
    """DynamoDB did not answer in time, or answered "not now": callers buffer and retry."""


class StoreMisconfigured(StoreError):
    """DynamoDB answered that this can never work as configured: waiting will not help."""


class AlreadyDone(TrackerError):
    """A conditional write lost to an identical earlier one: the work is already done."""


class NotFound(TrackerError):
    pass
