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
import logging
from typing import Any

from pydantic import ValidationError

from alerter.notify import HouseOutbox
from alerter.processor import Processor
from alerter.records import Change, parse
from common.aws import dynamodb
from common.db import Store
from common.errors import StoreError
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)


async def handle_event(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Handle a batch; answer the records to retry (`ReportBatchItemFailures`). For a stream
    Lambda retries from the lowest sequence number named, so the answer names the first
    record that could not be handled (one that does not parse, or whose handling failed):
    everything before it is done, and it and what follows come again. Handling is
    idempotent (an alert is recorded once by its id), so what is handled twice is harmless."""
    records = event.get("Records", [])
    changes: list[Change] = []
    failed: str | None = None
    for record in records:
        try:
            changes.append(parse(record))
        except (ValidationError, KeyError, ValueError) as exc:
            failed = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
            log.error("stream record %s does not parse (%s); retried from it", failed, exc)
            break
    async with dynamodb(settings) as client:
        store = Store(client, settings)
        processor = Processor(settings, store, HouseOutbox(store, settings), board=None)
        try:
            await processor.handle(changes)
        except StoreError as exc:
            log.warning("batch of %d failed (%s); handling it record by record", len(changes), exc)
            for change in changes:
                try:
                    await processor.handle([change])
                except StoreError as one:
                    log.error("record %s failed (%s); retried from it", change.sequence, one)
                    failed = change.sequence
                    break
    return {"batchItemFailures": [] if failed is None else [{"itemIdentifier": failed}]}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return asyncio.run(handle_event(event, load_settings()))
