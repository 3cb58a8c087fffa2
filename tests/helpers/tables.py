"""Settings on a fresh table prefix, and the tables made on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common.aws import dynamodb
from common.db import Store
from common.schema import init_db
from common.settings import Settings


def make_settings(dynamodb_url: str, **overrides: Any) -> Settings:
    """Settings on DynamoDB Local at `dynamodb_url`, with tables of their own."""
    values: dict[str, Any] = {
        "aws_endpoint_url": dynamodb_url,
        "table_prefix": f"t{uuid.uuid4().hex[:12]}",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def tables(settings: Settings, create: bool = True) -> AsyncIterator[Store]:
    """A `Store` on `settings`' tables, made first unless `create` is false."""
    async with dynamodb(settings) as client:
        if create:
            await init_db(client, settings)
        yield Store(client, settings)
