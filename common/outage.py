"""One dependency's outages, as the logs and the metrics tell them.

Every call to DynamoDB reports here whether it got an answer. An outage is logged once when it
begins (with its cause) and once when it ends (with its length), never per failed call; it
ends with the first answer `QUIET` seconds after the last failure, so that throttling of some
calls among good ones reads as one outage, not as one per failure. The counts feed each
process's metrics (the service's /metrics, the workers' heartbeats)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)
QUIET = 5.0


class Outage:
    def __init__(self, name: str = "DynamoDB") -> None:
        self.name = name
        self.since: float | None = None  # time.time() the current outage began
        self.last_failure = 0.0
        self.outages = 0
        self.failures = 0  # failed calls, in and out of outages
        self.seconds = 0.0  # total length of the outages that ended

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, cause: BaseException) -> None:
        self.failures += 1
        self.last_failure = time.time()
        if self.since is None:
            self.since = time.time()
            self.outages += 1
            log.warning(
                "%s unavailable (%s); retrying with backoff until it answers", self.name, cause
            )

    def answered(self) -> None:
        if self.since is not None and time.time() - self.last_failure >= QUIET:
            length = self.last_failure - self.since
            self.seconds += length
            self.since = None
            log.warning("%s answering again after an outage of %.1f s", self.name, length)

    def figures(self) -> dict[str, float]:
        """For a heartbeat or /metrics."""
        return {
            "store_up": 0.0 if self.down else 1.0,
            "store_outages": float(self.outages),
            "store_failures": float(self.failures),
            "store_outage_seconds": self.seconds
            + (time.time() - self.since if self.since is not None else 0.0),
        }
