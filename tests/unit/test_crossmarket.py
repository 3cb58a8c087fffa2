"""Cross-market figures against a reference written from the contract's formulas in exact
arithmetic (`Fraction`): every status, the weighted mean and median, the volume, dispersion,
hysteresis across ticks, with 1, 2, 3 and many markets and zero or missing volumes."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.assets import Split, cryptowatch_pairs
from common.crossmarket import (
    Observation,
    PairFigures,
    asset_figures,
    pair_figures,
    usd_prices,
    weighted_median,
)
from common.figures import decode, encode
from common.models import Market, Quote
from common.parts import MAX_PART_BYTES
from demo.exchange import DemoExchange
from fetcher.aggregate import Aggregator, cross_check
from fetcher.sources.cryptowatch import Cryptowatch
from tests.crossmarket_reference import PERCENT, ReferenceRun, close, ref_median, reference


def check(figures: PairFigures, observations: list[Observation]) -> None:
    expected = reference(observations)
    assert [c.status for c in figures.constituents] == [r.status for r in expected]
    for c, r in zip(figures.constituents, expected, strict=True):
        assert close(c.deviation, r.deviation)
    used = [o for o, r in zip(observations, expected, strict=True) if r.status == "used"]
    counted = [
        o for o, r in zip(observations, expected, strict=True) if r.status in ("used", "outlier")
    ]
    assert figures.markets == len(used)
    assert figures.excluded == len(observations) - len(used)
    assert close(figures.volume, sum((Fraction(o.volume or 0) for o in counted), Fraction(0)))
    if not used:
        assert figures.price is None and figures.median is None and figures.dispersion is None
        return
    weights = [Fraction(o.volume or 0) for o in used]
    products = (w * Fraction(o.price) for w, o in zip(weights, used, strict=True))
    mean = sum(products, Fraction(0)) / sum(weights, Fraction(0))
    assert close(figures.price, mean)
    median = ref_median([o.price for o in used], [o.volume or 0.0 for o in used])
    assert Fraction(figures.median or 0) == median  # a chosen price: exactly one of them
    spread = (max(Fraction(o.price) for o in used) - min(Fraction(o.price) for o in used)) / median
    assert close(figures.dispersion, spread)
    for c, o in zip(figures.constituents, observations, strict=True):
        share = Fraction(o.volume or 0) / sum(weights) if c.status == "used" else Fraction(0)
        assert close(c.weight, share)


# -- strategies -------------------------------------------------------------------------------
# Prices around one level, some far off (a decimal slip, an inverted pair), some exactly at a
# threshold's ratio from a round level (1.1, 1.05, 10, 0.1 are the contract's boundaries).
FACTORS = [1.0, 1.0, 1.001, 0.999, 1.04, 1.05, 1.06, 1.09, 1.1, 1.11, 1 / 1.1, 0.95, 10.0, 0.1, 100]
volume = st.one_of(
    st.none(),
    st.just(0.0),
    st.sampled_from([1.0, 2.0, 0.5, 3.0]),
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
)


@st.composite
def observations(draw: st.DrawFn, min_size: int = 1, max_size: int = 9) -> list[Observation]:
    level = draw(st.sampled_from([1.0, 40_000.0, 0.00001234, 2500.5]))
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        factor = draw(
            st.one_of(
                st.sampled_from(FACTORS), st.floats(min_value=0.5, max_value=2.0, allow_nan=False)
            )
        )
        out.append(
            Observation(
                f"x{i}",
                "btcusd",
                level * factor,
                draw(volume),
                stale=draw(st.booleans()) and draw(st.booleans()),
                was_outlier=draw(st.booleans()),
            )
        )
    return out


@settings(max_examples=600, deadline=None)
@given(observations())
def test_a_ticks_figures_equal_the_exact_reference(obs: list[Observation]) -> None:
    """Statuses, deviations, weights, price, median, volume and dispersion of one tick equal
    the contract's formulas computed in exact arithmetic."""
    check(pair_figures("btc-usd", "btc", "usd", obs, PERCENT), obs)


@pytest.mark.parametrize("n", [1, 2, 3, 12])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_one_two_three_and_many_markets(n: int, data: st.DataObject) -> None:
    """With fewer than three comparable markets nobody is judged; from three on, each is
    judged against the others' volume-weighted median."""
    obs = data.draw(observations(min_size=n, max_size=n))
    figures = pair_figures("btc-usd", "btc", "usd", obs, PERCENT)
    check(figures, obs)
    comparable = [o for o in obs if o.volume and not o.stale]
    if len(comparable) < 3:
        assert {c.status for c in figures.constituents} <= {"used", "no_volume", "stale"}


def test_the_contracts_boundaries_decide_exactly() -> None:
    """At the thresholds themselves: 10× is gross (≥) while the float 0.1 (just above 1/10)
    is not; the float 1.1 (just above 11/10) is an outlier; an outlier at the float 1.05
    (just above 21/20) stays one."""

    def statuses(prices: list[float], was: bool = False) -> list[str]:
        obs = [
            Observation(f"x{i}", "p", p, 1.0, was_outlier=was and i == 0)
            for i, p in enumerate(prices)
        ]
        return [c.status for c in pair_figures("a-b", "a", "b", obs, PERCENT).constituents]

    assert statuses([10.0, 1.0, 1.0])[0] == "gross"
    assert statuses([0.1, 1.0, 1.0])[0] == "outlier"  # the float 0.1 is just above 1/10
    assert statuses([0.09999999999999999, 1.0, 1.0])[0] == "gross"  # the float below it
    assert statuses([1.1, 1.0, 1.0])[0] == "outlier"  # float 1.1 > 11/10
    assert statuses([1.0999999999999999, 1.0, 1.0])[0] == "used"  # the float below 11/10
    assert statuses([1.05, 1.0, 1.0], was=True)[0] == "outlier"  # float 1.05 > 21/20
    assert statuses([1.04, 1.0, 1.0], was=True)[0] == "used"
    assert statuses([1.07, 1.0, 1.0], was=False)[0] == "used"


def test_weighted_median_is_the_lowest_price_reaching_half() -> None:
    """Half exactly reached at a price picks that price, not the next."""
    assert weighted_median([1.0, 2.0], [1, 1]) == 1.0
    assert weighted_median([3.0, 1.0, 2.0], [1, 1, 5]) == 2.0
    assert weighted_median([5.0], [7]) == 5.0


# -- across ticks: staleness and hysteresis ---------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.tuples(st.sampled_from([100.0, 101.0, 107.0, 112.0, 104.0, 1e4, 100.5]), volume),
            min_size=1,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_staleness_and_hysteresis_across_ticks_follow_the_reference(
    ticks: list[dict[str, tuple[float, float | None]]],
) -> None:
    """The fetcher's aggregator, fed tick after tick (markets coming and going), gives every
    market the status the reference gives it from the whole sequence."""
    step, stale_after = 60, 180
    aggregator = Aggregator(stale_after, PERCENT)
    run = ReferenceRun(stale_after)
    expected = [run.tick(k * step, tick).statuses for k, tick in enumerate(ticks)]
    for k, tick in enumerate(ticks):
        quotes = [
            Quote(Market(name, "pq"), price, vol, Split("p", "q"))
            for name, (price, vol) in tick.items()
        ]
        doc = aggregator.tick(k * step, quotes, [])
        (pair,) = doc.pairs
        assert {c.exchange: c.status for c in pair.constituents} == expected[k]


def test_a_frozen_market_turns_stale_at_the_limit_and_back_when_it_moves() -> None:
    aggregator = Aggregator(stale_after=120, outlier_percent=PERCENT)
    split = Split("btc", "usd")

    def status(t: int, price: float) -> str:
        quotes = [
            Quote(Market("frozen", "btcusd"), price, 5.0, split),
            Quote(Market("live", "btcusd"), 100.0 + t, 5.0, split),
        ]
        (pair,) = aggregator.tick(t, quotes, []).pairs
        return pair.constituents[0].status

    assert [status(t, 100.0) for t in (0, 60, 120, 180)] == ["used", "used", "stale", "stale"]
    assert status(240, 100.5) == "used"


# -- assets -----------------------------------------------------------------------------------
def figures(pair: str, price: float | None, volume: float = 1.0, markets: int = 1) -> PairFigures:
    base, quote = pair.split("-")
    return PairFigures(pair, base, quote, price, price, volume, markets, 0, 0.0, ())


def test_usd_prices_follow_the_contracts_paths_in_order() -> None:
    """-usd first; else -usdt/-usdc × that coin's USD price; else -btc × btc-usd."""
    pairs = {
        p.pair: p
        for p in [
            figures("btc-usd", 40_000.0),
            figures("usdt-usd", 0.999),
            figures("eth-usdt", 2_000.0),
            figures("eth-btc", 0.06),  # not used: the usdt path comes first
            figures("xyz-btc", 0.001),
            figures("abc-eur", 5.0),  # no path to USD
        ]
    }
    usd = usd_prices(pairs)
    assert usd["btc"] == (40_000.0, "btc-usd")
    assert usd["eth"] == (2_000.0 * 0.999, "eth-usdt×usdt-usd")
    assert usd["xyz"] == (0.001 * 40_000.0, "xyz-btc×btc-usd")
    assert "abc" not in usd and "eur" not in usd
    assets = asset_figures(pairs)
    # eth: base volume of eth-usdt and eth-btc; usdt: quote volume of eth-usdt, base of usdt-usd.
    assert assets["eth"].volume == 2.0
    assert assets["usdt"].volume == 2_000.0 + 1.0
    assert assets["usdt"].volume_usd == pytest.approx(2001.0 * 0.999)
    assert assets["abc"].price_usd is None and assets["abc"].volume_usd is None


def test_cross_check_names_markets_over_one_percent_apart() -> None:
    direct = [
        Quote(Market("bitfinex", "btcusd"), 100.0, 1.0),
        Quote(Market("bitfinex", "ethusd"), 10.0, 1.0),
    ]
    feed = [
        Quote(Market("bitfinex", "btcusd"), 101.5, 1.0),  # 1.5 %: named
        Quote(Market("bitfinex", "ethusd"), 10.05, 1.0),  # 0.5 %: fine
        Quote(Market("bitfinex", "xrpusd"), 1.0, 1.0),  # not fetched directly: not compared
    ]
    compared, found = cross_check(direct, feed)
    assert compared == 2
    assert [(m.market, m.direct, m.feed) for m in found] == [("bitfinex:btcusd", 100.0, 101.5)]


def test_the_figures_document_reads_back_equal_across_parts_and_refuses_a_torn_one() -> None:
    """Encoded in parts of 1,000 rows and decoded, the document is equal; parts of two
    different writes are refused (the reader reads again)."""
    aggregator = Aggregator(3600, PERCENT)
    quotes = [
        Quote(Market(e, f"t{i}usd"), 1.0 + i + k / 1000, 10.0 + k, Split(f"t{i}", "usd"))
        for i in range(2500)
        for k, e in enumerate(["a", "b", "c"])
    ]
    doc = aggregator.tick(60, quotes, [])
    parts = encode(doc)
    assert len(parts) == 6  # 2,500 pairs, then 2,501 assets, 1,000 rows a part
    assert decode(parts) == doc
    later = encode(replace(doc, written_at=doc.written_at + 1))
    assert decode([parts[0], later[1], parts[2]]) is None
    assert decode(parts[:2]) is None


def test_mismatches_beyond_twenty_are_counted_not_named() -> None:
    """25 markets off between the direct fetch and the feed: all counted, the 20 furthest
    named, furthest first."""
    direct = [
        Quote(Market("bitfinex", f"t{i}usd"), 100.0, 1.0, Split(f"t{i}", "usd")) for i in range(25)
    ]
    feed = [Quote(q.market, 100.0 * (1.02 + i / 1000), 1.0) for i, q in enumerate(direct)]
    doc = Aggregator(3600, PERCENT).tick(60, direct, feed)
    assert (doc.compared, doc.differ, len(doc.mismatches)) == (25, 25, 20)
    assert doc.mismatches[0].market == "bitfinex:t24usd"
    assert decode(encode(doc)) == doc


def test_the_document_of_a_20000_market_tick_fits_dynamodbs_item_limit() -> None:
    """The scale universe's tick (20,000 markets, 4,000 pairs, 4,001 assets): every part of
    its document under DynamoDB's 400 KB item limit, and read back equal. Its assets once went
    in part 0's header and made it too large to write."""
    exchange = DemoExchange(pairs=1, cryptowatch_markets=20_000)
    source = Cryptowatch("http://x")
    source.pair_assets = cryptowatch_pairs(exchange.pair_listing())
    answer = {
        "prices": exchange.first_page("prices", exchange.prices(None)),
        "summaries": exchange.first_page("summaries", exchange.summaries()),
    }
    parsed = source.parse(answer)
    doc = Aggregator(3600, PERCENT).tick(60, parsed.quotes, parsed.shadows)
    assert (len(doc.pairs), len(doc.assets)) == (4000, 4001)
    parts = encode(doc)
    assert max(len(p) for p in parts) <= MAX_PART_BYTES < 400_000
    assert decode(parts) == doc
