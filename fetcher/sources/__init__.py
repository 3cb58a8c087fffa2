"""The registry of sources: adding an exchange is one module and one line here."""

from __future__ import annotations

from common.settings import Settings
from fetcher.sources.base import Parsed, Source
from fetcher.sources.bitfinex import Bitfinex
from fetcher.sources.cryptowatch import Cryptowatch

__all__ = ["Parsed", "Source", "build_sources"]


def build_sources(settings: Settings) -> list[Source]:
    direct = frozenset(s for s in settings.sources if s != "cryptowatch")
    registry: dict[str, Source] = {
        "bitfinex": Bitfinex(settings.bitfinex_url),
        "cryptowatch": Cryptowatch(settings.cryptowatch_url, direct),
    }
    return [registry[name] for name in settings.sources]
