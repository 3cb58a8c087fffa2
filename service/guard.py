"""The public API's outer guard: read-only, with bounded request lines.

Every route is a GET (HEAD answered alike); anything else is refused before routing, and a path
or query string longer than any real request is refused before it is parsed. Bodies are never
read. CORS is off unless `TRACKER_CORS_ORIGINS` names origins (then GET only, from those).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD"})
MAX_PATH = 512  # bytes: the longest real path is /symbols/{symbol}/history
MAX_QUERY = 16_384  # bytes: room for `symbols=` with the largest allowed subset


class ReadOnlyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await answer(send, *refusal)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def refusal(scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if scope["method"] not in READ_METHODS:
            allow = [(b"allow", b"GET, HEAD")]
            return 405, f"method {scope['method']} not allowed: this API is read-only", allow
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) > MAX_PATH:
            return 414, f"path longer than {MAX_PATH} bytes", []
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            return 414, f"query string longer than {MAX_QUERY} bytes", []
        return None


async def answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
