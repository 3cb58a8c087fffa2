"""Base and quote assets of a market, in the codes the world uses, and the pair they make.

Each exchange has its own codes for some assets. The alias tables below follow ccxt's
`commonCurrencies` (ccxt `js/bitfinex2.js` and `js/kraken.js`): Bitfinex writes `UST` for
Tether, `DSH` for Dash, `IOT` for IOTA; Kraken `XBT` for Bitcoin and `XDG` for Dogecoin.
Only renames to another world code are kept; an exchange's own answer (Bitfinex's
`pub:map:currency:sym`) can add more at run time.

A split is never guessed: a market whose base and quote are not known from its exchange's own
listing or naming rule has none, and is counted as such (`/status`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Exchanges whose points are the cross-market figures themselves, never a venue.
PAIRS_EXCHANGE, ASSETS_EXCHANGE = "all", "asset"
AGGREGATES = frozenset({PAIRS_EXCHANGE, ASSETS_EXCHANGE})

ALIASES: dict[str, dict[str, str]] = {
    "bitfinex": {
        "ust": "usdt",
        "udc": "usdc",
        "eut": "eurt",
        "eus": "eurs",
        "tsd": "tusd",
        "dsh": "dash",
        "iot": "iota",
        "alg": "algo",
        "ato": "atom",
        "amp": "ampl",
        "mna": "mana",
        "qtm": "qtum",
        "stj": "storj",
        "dat": "data",
        "bchn": "bch",
        "iqx": "iq",
        "qsh": "qash",
        "sng": "sngls",
        "vsy": "vsys",
        "wax": "waxp",
        "xch": "xchf",
        "yyw": "yoyow",
        "edo": "pnt",
        "idx": "id",
    },
    "kraken": {
        "xbt": "btc",
        "xdg": "doge",
        "xxbt": "btc",
        "xxdg": "doge",
        "xeth": "eth",
        "xltc": "ltc",
        "xxrp": "xrp",
        "xxmr": "xmr",
        "xxlm": "xlm",
        "xzec": "zec",
        "xetc": "etc",
        "zusd": "usd",
        "zeur": "eur",
        "zgbp": "gbp",
        "zjpy": "jpy",
        "zcad": "cad",
    },
}
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9.]{0,31}$")


@dataclass(frozen=True, slots=True)
class Split:
    base: str
    quote: str

    @property
    def pair(self) -> str:
        """`btc-usd`: the pair's name, the symbol of its `all` market."""
        return f"{self.base}-{self.quote}"


def canonical(exchange: str, code: str, extra: Mapping[str, str] | None = None) -> str:
    """An exchange's asset code in the world's (lower case): `ust` on Bitfinex → `usdt`."""
    code = code.lower()
    if extra and code in extra:
        return extra[code]
    return ALIASES.get(exchange, {}).get(code, code)


def split(
    exchange: str, base: str, quote: str, extra: Mapping[str, str] | None = None
) -> Split | None:
    """The split of a market from its exchange's codes, or None when a code is not one."""
    b, q = canonical(exchange, base, extra), canonical(exchange, quote, extra)
    if not (CODE_RE.match(b) and CODE_RE.match(q)) or b == q:
        return None
    return Split(b, q)


def split_bitfinex(
    symbol: str, listed: frozenset[str] | None = None, extra: Mapping[str, str] | None = None
) -> Split | None:
    """Bitfinex's naming rule: a colon between the sides when one is longer than three
    letters (`testbtc:testusd`, `avax:usd`), else three and three (`btcusd`). With its
    `pub:list:pair:exchange` list at hand, a symbol it does not list has no split."""
    if listed is not None and symbol not in listed:
        return None
    if ":" in symbol:
        base, _, quote = symbol.partition(":")
    elif len(symbol) == 6:
        base, quote = symbol[:3], symbol[3:]
    else:
        return None
    return split("bitfinex", base, quote, extra)


def bitfinex_listing(answer: object) -> tuple[frozenset[str] | None, dict[str, str]]:
    """`GET /v2/conf/pub:list:pair:exchange,pub:map:currency:sym` → (the listed pairs as
    symbols, `btcusd` / `testbtc:testusd`; the currency renames, `ust` → `usdt`). A list that
    is missing or malformed is None / empty: the naming rule alone applies."""
    lists = answer if isinstance(answer, list) else []
    pairs = lists[0] if lists and isinstance(lists[0], list) else None
    listed = (
        frozenset(p.lower() for p in pairs if isinstance(p, str)) if pairs is not None else None
    )
    renames: dict[str, str] = {}
    mapping = lists[1] if len(lists) > 1 and isinstance(lists[1], list) else []
    for entry in mapping:
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(side, str) for side in entry)
            and "f0" not in entry[0].lower()
        ):
            renames[entry[0].lower()] = entry[1].lower()
    return listed or None, renames


def cryptowatch_pairs(answer: object) -> dict[str, tuple[str, str]]:
    """`GET /pairs` → {pair symbol: (base, quote)}; futures pairs are not spot and left out."""
    result = answer.get("result") if isinstance(answer, dict) else None
    out: dict[str, tuple[str, str]] = {}
    for pair in result if isinstance(result, list) else []:
        if not isinstance(pair, dict) or pair.get("futuresContractPeriod"):
            continue
        symbol, base, quote = pair.get("symbol"), pair.get("base"), pair.get("quote")
        if (
            isinstance(symbol, str)
            and isinstance(base, dict)
            and isinstance(quote, dict)
            and isinstance(base.get("symbol"), str)
            and isinstance(quote.get("symbol"), str)
        ):
            out[symbol.lower()] = (base["symbol"], quote["symbol"])
    return out


def unknown_sample(names: Iterable[str], limit: int = 5) -> str:
    """A few of the markets without a split, for a log line or /status."""
    shown = sorted(names)
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
