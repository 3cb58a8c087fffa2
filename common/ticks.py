"""Wall-clock tick alignment: the one place that knows what a tick is."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


def tick_floor(now: float, interval: int) -> int:
    """The scheduled tick at or before `now` (a multiple of `interval` since the epoch)."""
    return math.floor(now / interval) * interval


def next_tick(now: float, interval: int) -> int:
    """The first scheduled tick strictly after `now`."""
    return tick_floor(now, interval) + interval


def iso(t: float) -> str:
    """Epoch seconds → ISO-8601 UTC with a trailing Z (the API's time format)."""
    if t == int(t):  # every tick: the fast path matters for 1,440-point histories
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    dt = datetime.fromtimestamp(t, UTC)
    text = dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO-8601 (naive means UTC) or epoch seconds → epoch seconds; ValueError otherwise."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a finite time: {text!r}")
        return value
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
