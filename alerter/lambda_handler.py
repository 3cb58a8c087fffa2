"""The alert rule as an AWS Lambda function triggered by the points table's stream.

Configure an event source mapping on the table's stream (batch size up to 1000,
`FunctionResponseTypes: ReportBatchItemFailures`); the function reads the same environment
variables as the alerter. Without a long-lived process there is no in-memory board, so each
point's alert window is read from the table; the board snapshot the service ranks from still
needs one long-running `tracker alert` (see docs/scaling.md), and so do users' rules (the rule
book lives in it). Alerts go out through the outbox, sent by `tracker deliver`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alerter.notify import HouseOutbox
from alerter.processor import Processor
from alerter.records import parse
from common.aws import dynamodb
from common.db import Store
from common.settings import Settings, load_settings


async def handle_event(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    changes = [parse(record) for record in event.get("Records", [])]
    async with dynamodb(settings) as client:
        store = Store(client, settings)
        await Processor(settings, store, HouseOutbox(store, settings), board=None).handle(changes)
    return {"batchItemFailures": []}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return asyncio.run(handle_event(event, load_settings()))
