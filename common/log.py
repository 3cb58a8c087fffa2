"""Logging set-up shared by every process: one line per event, key facts first."""

from __future__ import annotations

import logging
import re
import sys

_SECRET = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact(text: str) -> str:
    """Hide credentials embedded in URLs (``scheme://user:token@host`` → ``scheme://***@host``)."""
    return _SECRET.sub(r"\g<scheme>***@", text)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", name: str | None = None) -> None:
    prefix = f"{name} " if name else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _RedactingFormatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "aiobotocore", "aioboto3", "urllib3", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
