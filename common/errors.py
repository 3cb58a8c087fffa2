"""Errors of the shared layer.

TrackerError
├── StoreError            DynamoDB failed; keeps the AWS error code and the original cause
│   └── StoreUnavailable  DynamoDB could not be reached at all (connection refused, timeout)
├── AlreadyDone           a conditional write found the item there already (idempotent duplicate)
└── NotFound              a market or item that does not exist
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base of every error the tracker raises on purpose."""


class StoreError(TrackerError):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.code = code


class StoreUnavailable(StoreError):
    """DynamoDB is not reachable: callers buffer and retry later."""


class AlreadyDone(TrackerError):
    """A conditional write lost to an identical earlier one: the work is already done."""


class NotFound(TrackerError):
    pass
