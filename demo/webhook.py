"""A local JSON webhook receiver: the far end of an apprise `json://` URL, for tests and bench."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


@asynccontextmanager
async def receiving(on_post: Callable[[dict[str, Any]], None]) -> AsyncIterator[str]:
    """Call `on_post` with each POSTed JSON body; yields the apprise URL that reaches it."""

    async def hook(request: web.Request) -> web.Response:
        on_post(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"json://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()
