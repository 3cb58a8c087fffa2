"""An outage is one log line when it begins and one when it ends, however many calls fail,
and however the failures interleave with answers (throttling of some calls)."""

from __future__ import annotations

import logging
import time

import pytest

from common.outage import QUIET, Outage


def test_one_outage_however_many_failures(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Failures interleaved with answers, then quiet: logged once each way, counted, timed."""
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])  # common.outage reads time.time()
    caplog.set_level(logging.WARNING, logger="common.outage")
    watch = Outage()
    for _ in range(10):  # half the calls throttled, for 10 s
        watch.failed(RuntimeError("throttled"))
        now[0] += 0.5
        watch.answered()
        now[0] += 0.5
    assert watch.down and watch.outages == 1 and watch.failures == 10
    now[0] += QUIET
    watch.answered()
    assert not watch.down and watch.figures()["store_up"] == 1.0
    assert watch.seconds == pytest.approx(9.0)  # first to last failure
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("DynamoDB unavailable (throttled)")
    assert lines[1] == "DynamoDB answering again after an outage of 9.0 s"
