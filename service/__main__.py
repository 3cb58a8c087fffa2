"""`python -m service` / `tracker serve`: settings → app → uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from common.log import setup_logging
from common.settings import Settings
from service.app import create_app


def main(settings: Settings | None = None) -> int:
    settings = settings or Settings()
    setup_logging(settings.log_level, "service")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        limit_concurrency=2048,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
