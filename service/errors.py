"""Errors the API turns into FastAPI's `{"detail": ...}` answers; never a 500 for a known fault.

Invalid    → 422, naming the parameter (same shape as FastAPI's own validation errors)
NotFound   → 404 (common.errors), naming the market
NotReady   → 503 + Retry-After: no rank figures yet (no alerter has published a board)
StoreError → 503 + Retry-After (common.errors): DynamoDB cannot answer and nothing held can
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common.errors import NotFound, StoreError, TrackerError
from service.auth import RateLimited, Unauthorized

STORE_RETRY_AFTER = 5  # seconds: outages are retried by the workers on about this scale


class Invalid(TrackerError):
    def __init__(self, parameter: str, message: str, where: str = "query") -> None:
        super().__init__(message)
        self.parameter = parameter
        self.where = where
        self.message = message


class NotReady(TrackerError):
    """Our own state, not the client's: the figures asked for do not exist yet."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def printable(value: Any) -> Any:
    """A client's text as an answer may show it: lone surrogates (not UTF-8) escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def install(app: FastAPI) -> None:
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Invalid)
        detail = [{"type": "value_error", "loc": [exc.where, exc.parameter], "msg": exc.message}]
        return JSONResponse({"detail": printable(detail)}, status_code=422)

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def not_ready(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotReady)
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=headers)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        headers = {"Retry-After": str(STORE_RETRY_AFTER)}
        body = {"detail": f"storage unavailable, and nothing held to answer from: {exc}"}
        return JSONResponse(body, status_code=503, headers=headers)

    async def unauthorized(_: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="tracker"'}
        return JSONResponse({"detail": str(exc)}, status_code=401, headers=headers)

    async def rate_limited(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        """FastAPI's 422, without the `input` and `ctx` it would echo: a body may carry a
        token or a webhook URL, and an error answer must not show it back (or to a log)."""
        assert isinstance(exc, RequestValidationError)
        detail = [
            {k: v for k, v in error.items() if k not in ("input", "ctx", "url")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": printable(jsonable_encoder(detail))}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(Invalid, invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(NotReady, not_ready)
    app.add_exception_handler(StoreError, unavailable)
