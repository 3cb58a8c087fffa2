"""schemathesis against the running service's /openapi.json: no 5xx, every answer (404s and
422s included) conforming to its documented schema, on seeded data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import (
    ignored_auth,
    not_a_server_error,
    positive_data_acceptance,
    status_code_conformance,
    use_after_free,
)

from common.assets import Split, split_bitfinex
from common.figures_store import FiguresStore
from common.models import Alert, Market, Point, Quote
from common.sealed import new_secret_key
from common.ticks import tick_floor
from common.users_store import UsersStore
from fetcher.aggregate import Aggregator
from tests.helpers.processes import api_processes
from tests.helpers.tables import make_settings, tables

KEY: list[str] = []  # the seeded user's API key
BASE: list[str] = []  # the service's base URL


async def _seed(config: Any) -> None:
    now = tick_floor(time.time(), 60)
    async with tables(config) as store:
        markets = [Market("bitfinex", s) for s in ("btcusd", "ethusd", "testbtc:testusd")]
        await store.put_points(
            [Point(m, now - 60 * i, 100.0 + i % 7, 5.0) for m in markets for i in range(30)]
            + [Point(Market("kraken", "btcusd"), now, 1.0, None)]
        )
        await store.put_alert(Alert(markets[0], now - 600, 350.0, 100.0, 30))
        # The tick's cross-market figures, as the fetcher publishes them: /pairs and /assets
        # answer from real figures, not a 503.
        quotes = [Quote(m, 100.0, 5.0, split_bitfinex(m.symbol)) for m in markets] + [
            Quote(Market("kraken", "btcusd"), 1.0, None, Split("btc", "usd"))
        ]
        await FiguresStore(store).put(Aggregator(3600, 10.0).tick(now, quotes, []))
        users = UsersStore(store)
        await users.add_user("fuzzer")
        KEY.append((await users.create_key("fuzzer"))[1])


@pytest.fixture(scope="module")
def api(dynamodb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    config = make_settings(dynamodb_url)
    asyncio.run(_seed(config))
    logs = Path(tmp_path_factory.mktemp("fuzz"))
    extra = {
        "TRACKER_SECRET_KEY": new_secret_key(),
        "TRACKER_ALLOW_TARGETS": "127.0.0.2/32",
        "TRACKER_RATE_LIMIT": "100000",  # the fuzzer is fast; the limit has its own test
    }
    ready = lambda body: len(body["symbols"]) == 4  # noqa: E731
    with api_processes(config, logs, "/symbols", ready, extra) as base:
        BASE.append(base)
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_api_conforms_to_its_schema(api: Any) -> None:
    """Generated requests to every operation get no 5xx and only documented, schema-conforming
    answers. (Strategies are driven directly: schemathesis' pytest fixture loader does not run
    on pytest 9.2.)"""
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            # Every check but "positive data accepted": some 422s are semantic (start >= end,
            # an exchange with no markets, a range beyond the retention) and cannot be said in
            # a schema; they are asserted one by one in integration/test_service.py.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_the_me_routes_hold_up_to_a_stateful_fuzzer_with_a_real_key(api: Any) -> None:
    """schemathesis' state machine over the /me routes with a real key: created channels and
    rules are fetched, patched, tested and deleted through the schema's links; its checks
    include `ignored_auth` (each operation without the key must be refused) and
    `use_after_free` (a deleted rule or channel must stay gone), and no 5xx anywhere."""
    (key,) = KEY

    @api.auth()
    class Bearer:
        def get(self, case: Any, context: Any) -> str:
            return key

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    me = api.include(path_regex="^/me")
    assert len(list(me.get_all_operations())) >= 12
    machine = me.as_state_machine()
    checks = [ignored_auth, use_after_free, not_a_server_error, status_code_conformance]
    calls: list[str] = []

    class Machine(machine):  # type: ignore[misc, valid-type]
        def teardown(self) -> None:
            """Each walk starts from the same server state (no rule, no channel of the
            fuzzer's left), so a replayed walk draws as it did: hypothesis replays to shrink,
            and a bundle filled by a create that now fails would stop it differently."""
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=BASE[0], headers=auth, timeout=10) as http:
                for kind in ("rules", "channels"):
                    for item in http.get(f"/me/{kind}").json()[kind]:
                        assert http.delete(f"/me/{kind}/{item['id']}").status_code == 204

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            calls.append(f"{case.method} {case.path} {response.status_code}")
            # Semantic 422s (an unknown market, a refused target) are not in a schema.
            case.validate_response(
                response,
                checks=checks,
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs,
            )

    Machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=8,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    # The server's state steers which rules can run next, so hypothesis sometimes sees the
    # same prefix draw differently and stops with FlakyStrategyDefinition: that is about the
    # generator, not a finding, and the walk is run again (a check's failure is never retried).
    for attempt in range(3):
        try:
            Machine.TestCase().runTest()
            break
        except FlakyStrategyDefinition:
            if attempt == 2:
                raise
            calls.clear()
    created = [c for c in calls if c.startswith("POST /me/") and c.endswith(" 201")]
    followed = [c for c in calls if ("{rule_id}" in c or "{channel_id}" in c)]
    authorised = [c for c in calls if not c.endswith(" 401")]
    print(f"\n{len(calls)} calls, {len(authorised)} with the key accepted, {len(created)} created")
    # The key works for most calls (the rest are the fuzzer's own unauthenticated cases);
    # how deep a walk gets (a valid rule created, its links followed) is a draw, printed.
    print(f"{len(followed)} calls through a created rule's or channel's links")
    assert len(authorised) > len(calls) / 2, calls[:40]
