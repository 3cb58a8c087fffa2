"""Wall-clock tick alignment: the one place that knows what a tick is."""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime


def tick_floor(now: float, interval: int) -> int:
    """The scheduled tick at or before `now` (a multiple of `interval` since the epoch)."""
    return math.floor(now / interval) * interval


def next_tick(now: float, interval: int) -> int:
    """The first scheduled tick strictly after `now`."""
    return tick_floor(now, interval) + interval


def between_ticks(now: float, interval: int) -> bool:
    """Whether `now` lies in the part of its tick interval furthest from the fetcher's
    writes (from 40 % to 90 % of the way to the next tick): a tick's points are written in
    its first seconds, and the next one's begin at its end."""
    phase = (now - tick_floor(now, interval)) / interval
    return 0.4 <= phase < 0.9


@functools.lru_cache(maxsize=64)
def _date(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))


def iso(t: float) -> str:
    """Epoch seconds → ISO-8601 UTC with a trailing Z (the API's time format)."""
    if t == int(t):  # every tick: the fast path matters for 1,440-point histories
        day, second = divmod(int(t), 86400)  # UTC days have 86,400 s (no leap seconds)
        hour, rest = divmod(second, 3600)
        return f"{_date(day)}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"
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
