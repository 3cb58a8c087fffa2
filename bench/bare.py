"""A bare FastAPI endpoint under the same uvicorn settings: the baseline for req/s ratios."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        limit_concurrency=2048,
    )
