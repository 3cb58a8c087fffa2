"""The floor the store is measured against: plain BatchWriteItem calls, nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from common.db import BATCH


async def batch_write(
    client: Any, table: str, items: list[dict[str, Any]], concurrency: int
) -> None:
    """Write `items` in chunks of 25, `concurrency` at a time, re-sending unprocessed ones."""
    semaphore = asyncio.Semaphore(concurrency)

    async def write(chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in chunk]}
        async with semaphore:
            while pending:
                response = await client.batch_write_item(RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})

    await asyncio.gather(*(write(items[i : i + BATCH]) for i in range(0, len(items), BATCH)))
