"""Response models: what /openapi.json documents and every answer conforms to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.models import Metric

AS_OF = (
    "When the alerter published these figures (ISO-8601 UTC); the Age header says how many "
    "seconds ago. During a DynamoDB outage the last figures are served, older each minute."
)


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class Latest(BaseModel):
    model_config = _example(
        exchange="bitfinex",
        symbol="btcusd",
        price=40123.5,
        volume=1234.5,
        time="2026-11-23T08:00:00Z",
    )
    exchange: str = Field(description="Exchange the market trades on")
    symbol: str = Field(description="Pair in lower case, colon kept (testbtc:testusd)")
    price: float = Field(description="Last price at the newest stored tick")
    volume: float | None = Field(description="24h volume as the exchange reports it")
    time: str = Field(description="The newest stored tick, ISO-8601 UTC")


class SymbolList(BaseModel):
    symbols: list[Latest] = Field(description="The latest point of each market")
    as_of: str = Field(description=AS_OF)


class HistoryPoint(BaseModel):
    time: str = Field(description="Scheduled tick, ISO-8601 UTC")
    value: float


class History(BaseModel):
    model_config = _example(
        exchange="bitfinex",
        symbol="btcusd",
        metric="price",
        start="2026-11-22T08:00:00Z",
        end="2026-11-23T08:00:00Z",
        points=[{"time": "2026-11-22T08:01:00Z", "value": 40100.1}],
    )
    exchange: str
    symbol: str
    metric: Metric
    start: str = Field(description="Exclusive lower bound")
    end: str = Field(description="Inclusive upper bound")
    points: list[HistoryPoint] = Field(description="Oldest first")


class SymbolRank(BaseModel):
    model_config = _example(
        exchange="bitfinex",
        symbol="btcusd",
        metric="price",
        rank=3,
        total=287,
        stdev=152.3,
        mean=40110.2,
        count=1440,
        window_start="2026-11-22T08:00:00Z",
        window_end="2026-11-23T08:00:00Z",
        as_of="2026-11-23T08:00:02Z",
    )
    exchange: str
    symbol: str
    metric: Metric
    rank: int | None = Field(description="1 = largest stdev; null when not ranked (< 2 points)")
    total: int = Field(description="How many markets are ranked")
    stdev: float | None = Field(description="Sample standard deviation over the window")
    mean: float | None
    count: int = Field(description="Points in the window")
    window_start: str = Field(description="Exclusive: window_end - TRACKER_RANK_WINDOW")
    window_end: str = Field(description="Inclusive: the newest stored tick")
    as_of: str = Field(description=AS_OF)


class RankEntry(BaseModel):
    exchange: str
    symbol: str
    rank: int
    stdev: float
    mean: float
    count: int


class Ranking(BaseModel):
    model_config = _example(
        metric="price",
        total=2,
        window_start="2026-11-22T08:00:00Z",
        window_end="2026-11-23T08:00:00Z",
        ranking=[
            {
                "exchange": "bitfinex",
                "symbol": "btcusd",
                "rank": 1,
                "stdev": 152.3,
                "mean": 40110.2,
                "count": 1440,
            }
        ],
        as_of="2026-11-23T08:00:02Z",
    )
    metric: Metric
    total: int = Field(description="Ranked markets (before limit/offset)")
    window_start: str
    window_end: str
    ranking: list[RankEntry]
    as_of: str = Field(description=AS_OF)


class AlertOut(BaseModel):
    model_config = _example(
        id="bitfinex:btcusd:1795420800",
        exchange="bitfinex",
        symbol="btcusd",
        time="2026-11-23T08:00:00Z",
        price=120400.0,
        average=40110.2,
        ratio=3.0017,
        points=60,
    )
    id: str = Field(description="{exchange}:{symbol}:{epoch seconds of the tick}")
    exchange: str
    symbol: str
    time: str
    price: float
    average: float = Field(description="Mean price over the alert window before the point")
    ratio: float = Field(description="price / average")
    points: int = Field(description="Points in the alert window")


class AlertList(BaseModel):
    alerts: list[AlertOut] = Field(description="Newest first")


class Health(BaseModel):
    status: str = Field(
        description="ok; degraded (serving, but something is stale or away); "
        "unavailable (503: nothing to serve from)"
    )
    checks: dict[str, str] = Field(default_factory=dict)


class Alive(BaseModel):
    status: str = Field(description="ok")
    process: int = Field(description="the answering process's id (with --workers, one of them)")


class Component(BaseModel):
    ok: bool
    detail: str = Field(description="What is wrong and what to check, or how fresh it is")
    age_seconds: float | None = Field(
        default=None, description="Seconds since its last sign (publish, tick, heartbeat)"
    )


class Status(BaseModel):
    """Each component's freshness, for operators and the dashboard's banner."""

    time: str
    dynamodb: Component
    board: Component
    fetcher: dict[str, Component] = Field(description="One entry per source")
    alerter: Component
    notifier: Component = Field(description="The delivery worker (`tracker deliver`)")
    pairs: Component = Field(description="The cross-market figures: pairs, assets, checks")
    problems: list[str] = Field(description="Every component that is not ok, in words")


class ConstituentOut(BaseModel):
    exchange: str
    symbol: str
    price: float
    volume: float | None = Field(description="24 h base volume as the exchange reports it")
    weight: float = Field(description="Share of the used volume in the price; 0 when not used")
    deviation: float | None = Field(
        description="price / ref − 1, ref the volume-weighted median of the other markets; "
        "null when fewer than three markets could be compared"
    )
    status: str = Field(
        description="used; outlier (beyond TRACKER_OUTLIER_PERCENT of the others, back only "
        "within half of it); gross (10× or more away); stale (unchanged for "
        "TRACKER_STALE_AFTER); no_volume"
    )


class PairOut(BaseModel):
    model_config = _example(
        pair="btc-usd",
        base="btc",
        quote="usd",
        price=40101.3,
        median=40100.0,
        volume=5120.7,
        markets=4,
        excluded=1,
        dispersion=0.0009,
        time="2026-11-23T08:00:00Z",
    )
    pair: str = Field(description="{base}-{quote}, the symbol of its market on exchange `all`")
    base: str
    quote: str
    price: float | None = Field(description="24 h-volume-weighted mean of the used prices")
    median: float | None = Field(description="Volume-weighted median of the used prices")
    volume: float = Field(description="24 h base volume of the used and outlier markets")
    markets: int = Field(description="Markets used")
    excluded: int = Field(description="Markets of the pair at this tick not used")
    dispersion: float | None = Field(description="(max − min) / median of the used prices")
    time: str = Field(description="The tick, ISO-8601 UTC")


class PairDetail(PairOut):
    constituents: list[ConstituentOut] = Field(description="Every market of the pair at the tick")
    stale_after: int = Field(description="TRACKER_STALE_AFTER in force, seconds")
    outlier_percent: float = Field(description="TRACKER_OUTLIER_PERCENT in force")


class PairList(BaseModel):
    pairs: list[PairOut] = Field(description="Largest USD volume first")
    total: int = Field(description="Pairs matching (before limit/offset)")
    as_of: str = Field(description="When the fetcher computed these figures")


class AssetOut(BaseModel):
    model_config = _example(
        asset="btc",
        price_usd=40101.3,
        price_via="btc-usd",
        volume=6210.4,
        volume_usd=249041290.2,
        markets=12,
        time="2026-11-23T08:00:00Z",
    )
    asset: str
    price_usd: float | None = Field(description="Null when no path to USD exists")
    price_via: str | None = Field(
        description="The pairs the USD price came through: `btc-usd`, `eth-usdt×usdt-usd`, "
        "`xyz-btc×btc-usd`"
    )
    volume: float = Field(description="24 h, in the asset's own units (base + quote sides)")
    volume_usd: float | None
    markets: int = Field(description="Markets used in its pairs' figures")
    time: str


class AssetDetail(AssetOut):
    pairs: list[PairOut] = Field(description="The pairs it is the base or the quote of")


class AssetList(BaseModel):
    assets: list[AssetOut] = Field(description="Largest USD volume first")
    total: int
    as_of: str
