"""`tracker healthcheck service|fetcher|alerter|notifier`: a container's liveness, exit 0 or 1.

The service proves it by answering `/healthz`; the workers by the liveness file they touch on
every turn of their loop (common.lifecycle), which keeps being touched while DynamoDB or the
exchanges are down: liveness says the process works, not that the world around it does.
"""

from __future__ import annotations

import urllib.request

from common.lifecycle import alive_age
from common.settings import Settings

# A worker silent for longer than this is stuck (the alerter beats several times a second,
# the fetcher once a tick, and a tick may take its whole interval).
ALERTER_LIMIT = 60.0


def limit(role: str, settings: Settings) -> float:
    return ALERTER_LIMIT if role in ("alerter", "notifier") else 2 * settings.fetch_interval + 30


def check(role: str, settings: Settings) -> int:
    if role == "service":
        url = f"http://127.0.0.1:{settings.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=3):
                pass
        except OSError as exc:
            print(f"service: {url} does not answer: {exc}")
            return 1
        print("service: alive")
        return 0
    age = alive_age(role, settings.worker_id)
    if age is None:
        print(f"{role}: no liveness file yet (still starting?)")
        return 1
    most = limit(role, settings)
    if age > most:
        print(f"{role}: stuck: last sign of life {age:.0f} s ago (limit {most:.0f} s)")
        return 1
    print(f"{role}: alive ({age:.0f} s ago)")
    return 0
