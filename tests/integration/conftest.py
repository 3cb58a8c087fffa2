"""Fixtures of the integration modules."""

from __future__ import annotations

import pytest

from common.models import Point
from common.settings import Settings
from tests.helpers.ranked import WINDOW, seed
from tests.helpers.tables import make_settings, tables


@pytest.fixture
async def seeded(dynamodb_url: str) -> tuple[Settings, list[Point]]:
    settings = make_settings(dynamodb_url, rank_window=WINDOW, alert_window=600)
    points = seed()
    async with tables(settings) as store:
        await store.put_points(points)
    return settings, points
