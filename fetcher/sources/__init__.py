"""The registry of sources: adding an exchange is one module and one line here."""

from __future__ import annotations

from common.settings import Settings
from fetcher.sources.base import Parsed, Source
from fetcher.sources.bitfinex import Bitfinex
from fetcher.sources.cryptowatch import Cryptowatch

__all__ = ["Parsed", "Source", "build_sources", "close_sources"]


def build_sources(settings: Settings) -> list[Source]:
    # Exchanges fetched directly: Cryptowatch's markets of these are dropped.
    direct = frozenset(s.removeprefix("ccxt:") for s in settings.sources if s != "cryptowatch")
    sources: list[Source] = []
    for name in settings.sources:
        if name == "bitfinex":
            sources.append(Bitfinex(settings.bitfinex_url))
        elif name == "cryptowatch":
            sources.append(Cryptowatch(settings.cryptowatch_url, direct))
        else:  # ccxt:<id>, checked by the settings
            from fetcher.sources.ccxt_source import CcxtSource

            exchange_id = name.removeprefix("ccxt:")
            sources.append(CcxtSource(exchange_id, settings.fetch_timeout, settings.ccxt_url))
    return sources


async def close_sources(sources: list[Source]) -> None:
    """Release what a source holds open (ccxt's own HTTP session)."""
    for source in sources:
        close = getattr(source, "close", None)
        if close is not None:
            await close()
