"""A page in Debian's headless Chromium (playwright), watched for every request and error."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from playwright.async_api import Page, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Watched:
    """A page in Debian's headless Chromium, with every request and every error it made."""

    page: Page
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def watched_page() -> AsyncIterator[Watched]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            # Nothing of Chromium's own goes out to the network.
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        watched = Watched(await browser.new_page(viewport={"width": 1280, "height": 900}))
        watched.page.on("request", lambda r: watched.requested.append(r.url))
        watched.page.on("pageerror", lambda e: watched.errors.append(str(e)))
        watched.page.on(
            "console", lambda m: watched.errors.append(m.text) if m.type == "error" else None
        )
        try:
            yield watched
        finally:
            await browser.close()
