"""aioboto3 clients for DynamoDB and its Streams, configured once from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import aioboto3
from botocore.config import Config

from common.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodbstreams import DynamoDBStreamsClient

# Fail fast: callers have their own buffers and retries, so the SDK's should be short.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=10,
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=64,
)


def _session(settings: Settings) -> aioboto3.Session:
    return aioboto3.Session(
        region_name=settings.aws_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )


def dynamodb(
    settings: Settings, timeout: float | None = None
) -> AbstractAsyncContextManager[DynamoDBClient]:
    """The DynamoDB client; `timeout`: each request's connect and read limit, not retried (the
    service: a client is better told 503 at once than kept waiting on a dead endpoint)."""
    config = _CONFIG
    if timeout is not None:
        config = _CONFIG.merge(
            Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
        )
    return _session(settings).client(
        "dynamodb", endpoint_url=settings.aws_endpoint_url, config=config
    )


def streams(settings: Settings) -> AbstractAsyncContextManager[DynamoDBStreamsClient]:
    return _session(settings).client(
        "dynamodbstreams", endpoint_url=settings.aws_endpoint_url, config=_CONFIG
    )


@asynccontextmanager
async def clients(
    settings: Settings,
) -> AsyncIterator[tuple[DynamoDBClient, DynamoDBStreamsClient]]:
    async with AsyncExitStack() as stack:
        yield (
            await stack.enter_async_context(dynamodb(settings)),
            await stack.enter_async_context(streams(settings)),
        )
