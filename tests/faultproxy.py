"""A fault-injecting HTTP proxy in front of DynamoDB Local, for the outage tests.

It passes every request through, or, while a fault is on, answers a share of them as DynamoDB
does when it throttles (400 ThrottlingException) or fails (500 InternalFailure), in the SDK's
own error shapes, or is not there at all (`down`: its listener closed, so connections are
refused, as with a dead endpoint). It counts what it injected and, when asked to, keeps every
request it passed (`X-Amz-Target` and body): the IAM test compares those with the template's roles.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import aiohttp
from aiohttp import web

from tracker.dynamodb_local import free_port

Fault = Literal["throttle", "error"]
ANSWERS: dict[Fault, tuple[int, dict[str, str]]] = {
    "throttle": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput.",
        },
    ),
    "error": (500, {"__type": "com.amazon.coral.service#InternalFailure", "message": "Internal"}),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    def __init__(self, upstream: str, port: int, record: bool = False) -> None:
        self.upstream = upstream
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.fault: Fault | None = None
        self.share = 1.0
        self.injected: Counter[str] = Counter()
        self.passed = 0
        self.record = record
        self.requests: list[tuple[str, bytes]] = []  # kept only when recording
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def inject(self, fault: Fault | None, share: float = 1.0) -> None:
        """Answer `share` of the requests with `fault` from now on (None: pass all)."""
        self.fault, self.share = fault, share

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.fault is not None and random.random() < self.share:
            self.injected[self.fault] += 1
            status, error = ANSWERS[self.fault]
            return web.Response(
                status=status,
                body=json.dumps(error).encode(),
                content_type="application/x-amz-json-1.0",
            )
        assert self._http is not None
        if self.record:
            self.requests.append((request.headers.get("X-Amz-Target", ""), body))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._http.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            self.passed += 1
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=payload, headers=kept)

    async def up(self) -> None:
        """Listen (again) on the same port."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()

    async def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for connection in list(self._runner.server.connections):
                connection.force_close()  # kept-alive and in-flight ones too, at once

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await self.up()

    async def close(self) -> None:
        await self.down()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()


@asynccontextmanager
async def fault_proxy(upstream: str, record: bool = False) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(upstream, free_port(), record)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
