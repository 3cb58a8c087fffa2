"""Settings validation and tick alignment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import Settings
from common.ticks import iso, next_tick, parse_time, tick_floor


def test_settings_reject_unknown_sources_and_bad_windows() -> None:
    """Bad combinations fail at start-up with a message naming the variable."""
    with pytest.raises(ValidationError, match="unknown source"):
        Settings(sources="bitfinex,kraken")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="TRACKER_RANK_WINDOW"):
        Settings(rank_window=10**7)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma or space separated lists; AWS_ENDPOINT_URL gives dummy credentials."""
    monkeypatch.setenv("TRACKER_SOURCES", "bitfinex, cryptowatch")
    monkeypatch.setenv("TRACKER_NOTIFY_URLS", "json://a/b mailto://u:p@x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8000")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    s = Settings()
    assert s.sources == ["bitfinex", "cryptowatch"]
    assert s.notify_urls == ["json://a/b", "mailto://u:p@x"]
    assert s.aws_access_key_id == "local"


def test_min_points_defaults_to_half_the_ticks_of_the_window() -> None:
    """An hour of one-minute ticks needs 30 points for a verdict by default."""
    assert Settings().min_points == 30
    assert Settings(alert_window=10, fetch_interval=1).min_points == 5
    assert Settings(alert_min_points=3).min_points == 3


def test_ticks_align_to_the_wall_clock() -> None:
    """Ticks are multiples of the interval since the epoch."""
    assert tick_floor(125.9, 60) == 120
    assert next_tick(120.0, 60) == 180
    assert iso(0) == "1970-01-01T00:00:00Z"


def test_parse_time_accepts_iso_and_epoch() -> None:
    """ISO-8601 with Z or offset, naive as UTC, or epoch seconds."""
    assert parse_time("1970-01-01T00:01:00Z") == 60
    assert parse_time("1970-01-01T01:01:00+01:00") == 60
    assert parse_time("60") == 60
    with pytest.raises(ValueError):
        parse_time("yesterday")
