"""/metrics from one freshness reading: failed fetches by source and reason, data ages per
source, the workers' heartbeat ages and this replica's DynamoDB figures."""

from __future__ import annotations

from common.outage import Outage
from service.freshness import Reading
from service.metrics import Metrics


def test_failed_fetches_are_exported_by_source_and_reason() -> None:
    """Each `<source>.failed.<reason>` heartbeat figure becomes one labelled series."""
    beat: dict[str, float | str] = {
        "at": 995.0,
        "bitfinex.newest": 960.0,
        "bitfinex.failures": 3.0,
        "bitfinex.failed.maintenance": 2.0,
        "bitfinex.failed.rejected": 1.0,
        "bitfinex.last_error": "rejected: bitfinex says 10020: 'symbol: invalid'",
        "cryptowatch.newest": 990.0,
        "cryptowatch.failures": 0.0,
    }
    reading = Reading(1000.0, None, None, beat, None, 130.0)
    text = bytes(Metrics().render(reading, Outage().figures()).body).decode()
    assert 'tracker_fetch_failures{reason="maintenance",source="bitfinex"} 2.0' in text
    assert 'tracker_fetch_failures{reason="rejected",source="bitfinex"} 1.0' in text
    assert 'tracker_data_age_seconds{source="bitfinex"} 40.0' in text
    assert 'tracker_data_age_seconds{source="cryptowatch"} 10.0' in text
    assert 'tracker_worker_heartbeat_age_seconds{worker="fetcher"} 5.0' in text
    assert 'tracker_service_store{figure="store_up"} 1.0' in text
    status = reading.status()
    assert "the last: rejected: bitfinex says 10020" in status.fetcher["bitfinex"].detail
