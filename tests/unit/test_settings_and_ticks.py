"""Settings validation, tick alignment, and secrets kept out of logs."""

from __future__ import annotations

from datetime import UTC, datetime

import apprise
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.log import redact
from common.senders import apprise_label, check_house_urls
from common.settings import ConfigError, Settings, describe, load_settings
from common.ticks import between_ticks, iso, next_tick, parse_time, tick_floor
from tracker.cli import main as tracker


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


def test_bad_environment_names_each_variable_and_hides_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad environment is one message naming every variable to fix (not a traceback of
    field names); values are echoed, except those that may hold credentials."""
    monkeypatch.setenv("TRACKER_SOURCES", "binance")
    monkeypatch.setenv("TRACKER_FETCH_INTERVAL", "abc")
    monkeypatch.setenv("TRACKER_NOTIFY_URLS", "slack://secret-token")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "TRACKER_SOURCES: unknown source(s) ['binance']" in message
    assert "TRACKER_FETCH_INTERVAL: Input should be a valid integer" in message
    assert "(got 'abc')" in message
    monkeypatch.setenv("TRACKER_FETCH_INTERVAL", "0")
    monkeypatch.setenv("TRACKER_SOURCES", "bitfinex")
    monkeypatch.setenv("TRACKER_NOTIFY_URLS", "")
    with pytest.raises(SystemExit) as exited:
        tracker(["fetch", "--once"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("fetcher: bad configuration: TRACKER_FETCH_INTERVAL:"), err
    assert "Traceback" not in err
    monkeypatch.delenv("TRACKER_FETCH_INTERVAL")
    with pytest.raises(ValidationError) as invalid:
        Settings(notify_urls={"slack://secret-token": 1})  # type: ignore[arg-type]
    assert describe(invalid.value).startswith("bad configuration: TRACKER_NOTIFY_URLS: ")
    assert "secret-token" not in describe(invalid.value)


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


@given(tick=st.integers(0, 2**33), interval=st.sampled_from([1, 10, 60, 300]), at=st.floats(0, 1))
def test_between_ticks_is_the_middle_of_the_interval(tick: int, interval: int, at: float) -> None:
    """From 40 % to 90 % of the way from a tick to the next: away from both ticks' writes."""
    start = tick * interval
    now = start + at * interval
    assert between_ticks(now, interval) == (0.4 <= (now - start) / interval < 0.9)
    assert not between_ticks(start, interval)  # a tick's own writes
    assert not between_ticks(start + 0.95 * interval, interval)  # the next's about to begin


def test_parse_time_accepts_iso_and_epoch() -> None:
    """ISO-8601 with Z or offset, naive as UTC, or epoch seconds."""
    assert parse_time("1970-01-01T00:01:00Z") == 60
    assert parse_time("1970-01-01T01:01:00+01:00") == 60
    assert parse_time("60") == 60
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday")


def test_redact_hides_credentials_in_urls() -> None:
    line = "GET https://u:p@h/x failed; json://user:secret@hooks.example/a; see https://h/y"
    assert redact(line) == "GET https://***@h/x failed; json://***@hooks.example/a; see https://h/y"


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("slack://T1abcdef/B2defghij/C3ijklmnopqrstu", "B2defghij"),
        ("tgram://123456789:AAH-secretsecretsecret/987", "secretsecret"),
        ("json://user:hunter2@hooks.example/x", "hunter2"),
        ("mailto://user:hunter2@gmail.com", "hunter2"),
    ],
)
def test_notification_channels_are_named_without_their_secrets(url: str, secret: str) -> None:
    assert apprise.Apprise().add(url)
    name = apprise_label(url)
    assert secret not in name and name.startswith(url.split("://")[0])


def test_an_unknown_notification_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match=r"nosuch://…") as refused:
        check_house_urls(["nosuch://token-abc@x"])
    assert "token-abc" not in str(refused.value)


@given(st.integers(min_value=-(2**34), max_value=2**34))
def test_iso_of_whole_seconds_equals_datetime(t: int) -> None:
    """The fast path for ticks writes what datetime writes, before and after the epoch."""
    expected = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso(t) == iso(float(t)) == expected
