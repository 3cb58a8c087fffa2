"""Errors the API turns into FastAPI's `{"detail": ...}` answers.

Invalid   → 422, naming the parameter (same shape as FastAPI's own validation errors)
NotFound  → 404 (common.errors), naming the market
StoreUnavailable → 503 (common.errors)
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.errors import NotFound, StoreUnavailable, TrackerError


class Invalid(TrackerError):
    def __init__(self, parameter: str, message: str, where: str = "query") -> None:
        super().__init__(message)
        self.parameter = parameter
        self.where = where
        self.message = message


def install(app: FastAPI) -> None:
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Invalid)
        detail = [{"type": "value_error", "loc": [exc.where, exc.parameter], "msg": exc.message}]
        return JSONResponse({"detail": detail}, status_code=422)

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"storage unavailable: {exc}"}, status_code=503)

    app.add_exception_handler(Invalid, invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(StoreUnavailable, unavailable)
