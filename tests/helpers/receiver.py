"""A webhook receiver for tests: records every POST (headers and raw body), verifies Standard
Webhooks signatures with the `standardwebhooks` package when given the secret, and answers as
told (a status per request, a pause, a 302 to elsewhere)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    got: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to give first, in order
    status: int = 200  # then this
    pause: float = 0.0  # seconds before answering
    headers: dict[str, str] = field(default_factory=dict)
    redirect_to: str | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    runner: web.AppRunner | None = None
    site: web.TCPSite | None = None
    host: str = "127.0.0.1"
    port: int = 0

    async def down(self) -> None:
        """Stop listening (connections refused) until `up`."""
        if self.site is not None:
            await self.site.stop()
            self.site = None
        if self.runner is not None and self.runner.server is not None:
            for connection in list(self.runner.server.connections):
                connection.force_close()  # kept-alive ones too: the receiver is gone

    async def up(self) -> None:
        assert self.runner is not None
        self.site = web.TCPSite(self.runner, self.host, self.port)
        await self.site.start()

    def count(self, message_id: str) -> int:
        return self.ids().count(message_id)

    def ids(self) -> list[str]:
        return [r.headers.get("webhook-id", "") for r in self.got]

    def verified(self, secret: str) -> list[Any]:
        """Every body, each verified against its signature (raises if one does not match)."""
        from standardwebhooks.webhooks import Webhook

        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.got]


@asynccontextmanager
async def receiving(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Receiver]:
    receiver = Receiver(host=host)

    async def hook(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        receiver.got.append(Received(request.path, dict(request.headers), body))
        receiver.in_flight += 1
        receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
        try:
            if receiver.pause:
                await asyncio.sleep(receiver.pause)
        finally:
            receiver.in_flight -= 1
        status = receiver.answers.pop(0) if receiver.answers else receiver.status
        if receiver.redirect_to is not None:
            raise web.HTTPFound(receiver.redirect_to)
        return web.Response(
            status=status, text="receiver body: secret-of-the-receiver", headers=receiver.headers
        )

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    receiver.runner = runner
    receiver.site = web.TCPSite(runner, host, port)
    await receiver.site.start()
    receiver.port = runner.addresses[0][1]
    receiver.url = f"http://{host}:{receiver.port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
