"""`GET /`: the dashboard page; its script and the vendored chart library under /static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """/static: the page's own files and the chart library `make install` vendored."""
    if not (STATIC / "vendor" / "uPlot.iife.min.js").exists():
        raise RuntimeError(
            "the dashboard's chart library is missing: run `make install` "
            "(scripts/vendor-assets.sh vendors it into service/static/vendor)"
        )
    return StaticFiles(directory=STATIC)
