"""The API's outer guard: public data read-only, request lines and bodies bounded.

Every public route is a GET (HEAD answered alike); anything else is refused before routing,
except under `/me` (a user's own channels and rules, behind their key). A path or query string
longer than any real request is refused before it is parsed; a body longer than MAX_BODY is
refused as it arrives (by its Content-Length, or once that many bytes came). CORS is off
unless `TRACKER_CORS_ORIGINS` names origins (then GET only, from those).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class TooLarge(Exception):
    """The body grew past MAX_BODY while it was read."""


READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
PRIVATE = "/me"
MAX_BODY = 16_384  # bytes: a rule or channel is a few hundred
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
            if scope["method"] in WRITE_METHODS:
                await self.bounded(scope, receive, send)
                return
            if scope["method"] == "HEAD":
                await self.app({**scope, "method": "GET"}, receive, headless(send))
                return
        await self.app(scope, receive, send)

    async def bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body cut off at MAX_BODY (413 past it)."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await answer(send, 413, f"request body over {MAX_BODY} bytes", [])
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except TooLarge:
            await answer(send, 413, f"request body over {MAX_BODY} bytes", [])

    @staticmethod
    def refusal(scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        private = scope["path"] == PRIVATE or scope["path"].startswith(PRIVATE + "/")
        if scope["method"] not in READ_METHODS and not (
            private and scope["method"] in WRITE_METHODS
        ):
            allow = [(b"allow", b"GET, HEAD, POST, PATCH, DELETE" if private else b"GET, HEAD")]
            return 405, f"method {scope['method']} not allowed: this API is read-only", allow
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) > MAX_PATH:
            return 414, f"path longer than {MAX_PATH} bytes", []
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            return 414, f"query string longer than {MAX_QUERY} bytes", []
        return None


def headless(send: Send) -> Send:
    """HEAD as GET answers it, without the body: the same status and headers (Content-Length,
    ETag, Cache-Control included)."""

    async def without_body(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return without_body


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
