"""`GET /`: the dashboard page, `GET /docs`: the OpenAPI page; their scripts and the vendored
libraries (uPlot, swagger-ui) under /static, so that neither page loads anything from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[1] / "static"
VENDORED = ("uPlot.iife.min.js", "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
async def docs() -> HTMLResponse:
    """Swagger UI over /openapi.json, from the vendored copy (FastAPI's default loads a CDN)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Crypto market tracker – API",
        swagger_js_url="/static/vendor/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui.css",
        swagger_favicon_url="/static/vendor/favicon-32x32.png",
    )


def static_files() -> StaticFiles:
    """/static: the pages' own files and the libraries `make install` vendored."""
    missing = [name for name in VENDORED if not (STATIC / "vendor" / name).exists()]
    if missing:
        raise RuntimeError(
            f"vendored browser assets missing ({', '.join(missing)}): run `make install` "
            "(scripts/vendor-assets.sh vendors them into service/static/vendor)"
        )
    return StaticFiles(directory=STATIC)
