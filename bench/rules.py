"""Users' rules at breadth, and their deliveries.

- CPU: the alerter's handling of ticks of 20,000 markets with 100,000 rules (a mix of the four
  kinds, windows 1 h to 24 h) against the same with none, in-process, after a warm-up tick that
  reads every window whole: the board holds the last hour; older values are read through the
  store, here an in-memory stand-in, so the figure is the CPU of judging, and the reads it
  would send DynamoDB are counted apart.
- Memory: what the alerter keeps after the warm-up tick, with the rules against without
  (tracemalloc), per rule: the rule book and the windows' running sums.
- Restart → judging: 100,000 rules read back from DynamoDB Local through the change index.
- A rule change effective: the follower on DynamoDB Local, a change written, until applied.
- A crash tick: N rules fire at one tick → every delivery done (alerter's transactions, the
  delivery worker, a local receiver), each webhook-id received once.
- `GET /me/rules` with 100 rules, in-process, sequential.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import httpx
from pydantic import SecretStr

from alerter.processor import Processor
from alerter.records import Change
from alerter.user_rules import RuleJudge
from bench.report import Row, median, ms, pct, verdict
from common import aws
from common.channels import Channel, new_signing_secret
from common.channels_store import ChannelsStore, new_channel_id
from common.conditions import (
    AverageMultiple,
    CrossesAbove,
    CrossesBelow,
    Terms,
)
from common.conditions import (
    Change as ChangeCondition,
)
from common.db import Store
from common.models import Market, Point
from common.rules import Rule
from common.rules_store import RulesStore, new_rule_id, now_ms, rule_item
from common.schema import init_db
from common.sealed import Sealer, new_secret_key
from common.settings import Settings
from common.window import Board

MARKETS, RULES, STEP = 20_000, 100_000, 60
HISTORY = 61  # ticks held: the hour the board keeps and one more
WARM, TICKS = 1, 4  # ticks before measuring (every window read whole), ticks measured
WINDOWS = (3600, 4 * 3600, 12 * 3600, 86400)


class Table:
    """The store as the processor sees it, in memory: the series and nothing written."""

    def __init__(self, series: dict[Market, list[Point]], settings: Settings) -> None:
        self.series = series
        self.settings = settings
        self.client = None
        self.reads = 0
        self.fired = 0

    async def last_alert_time(self, market: Market) -> int | None:
        return None

    async def query_points(
        self, market: Market, start: float, end: float, consistent: bool = False
    ) -> list[Point]:
        self.reads += 1
        return [p for p in self.series.get(market, []) if start < p.t <= end]

    async def point_before(self, market: Market, t: int) -> Point | None:
        self.reads += 1
        older = [p for p in self.series.get(market, []) if p.t < t]
        return older[-1] if older else None

    async def record(self, *args: Any) -> None:  # the house outbox
        self.fired += 1

    async def record_all(self, fires: list[Any]) -> list[bool]:  # the rules' deliveries
        self.fired += len(fires)
        return [True] * len(fires)

    async def save_progress(self, *args: Any) -> None:
        return None


def rules_over(
    markets: list[Market], n: int, rng: random.Random, levels: dict[Market, float]
) -> list[Rule]:
    out = []
    for i in range(n):
        market = markets[i % len(markets)]
        level = levels[market]
        kind = i % 4
        if kind == 0:
            condition: Any = CrossesAbove(level * rng.uniform(1.001, 1.05))
        elif kind == 1:
            condition = CrossesBelow(level * rng.uniform(0.95, 0.999))
        elif kind == 2:
            condition = ChangeCondition(rng.choice((1.0, 5.0, 10.0)), rng.choice(WINDOWS), "any")
        else:
            condition = AverageMultiple(
                rng.choice((1.5, 2.0, 3.0)), rng.choice(WINDOWS), 30, "above"
            )
        out.append(
            Rule(
                new_rule_id(),
                f"u{i % 1000}",
                f"r{i}",
                market,
                "price",
                condition,
                Terms("rearm", 3600, 0),
                (),
                0.0,
                changed=1,
            )
        )
    return out


async def cpu(settings: Settings) -> list[Row]:
    rng = random.Random(7)
    markets = [Market("bench", f"m{i:05d}usd") for i in range(MARKETS)]
    end = 1_800_000_000
    levels = {m: math.exp(rng.uniform(-3, 8)) for m in markets}
    series = {
        m: [
            Point(m, end - STEP * (HISTORY - k), levels[m] * (1 + 0.001 * math.sin(k)), 10.0)
            for k in range(HISTORY)
        ]
        for m in markets
    }
    rules = rules_over(markets, RULES, rng, levels)
    ticks = [
        [
            Change(
                m,
                end + STEP * k,
                Point(m, end + STEP * k, levels[m] * (1 + rng.uniform(-0.01, 0.01)), 10.0),
                "1",
                None,
            )
            for m in markets
        ]
        for k in range(1, 1 + WARM + TICKS)
    ]

    async def run(with_rules: bool, traced: bool = False) -> tuple[float, Table, int]:
        """CPU of the measured ticks (after the warm-up ones, which read every window
        whole), and with `traced`, the memory the run keeps after its warm-up."""
        table = Table(series, settings)
        board = Board.holding_alert_window(86400, 3600, STEP)
        for points in series.values():
            board.load(points)
        if traced:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        judge = None
        if with_rules:
            judge = RuleJudge(cast(Any, table), board)
            judge.deliveries = cast(Any, table)
            judge.rules = cast(Any, table)
            for rule in rules:
                judge.book.apply(rule)
        processor = Processor(settings, cast(Any, table), cast(Any, table), board, judge)
        processor.loaded = dict.fromkeys(markets, time.time())
        processor.last_alert = dict.fromkeys(markets)

        async def handle(tick: list[Change]) -> None:
            for i in range(0, len(tick), 1000):
                await processor.handle(tick[i : i + 1000])

        for tick in ticks[:WARM]:
            await handle(tick)
        kept = 0
        if traced:
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            kept = sum(s.size_diff for s in after.compare_to(before, "filename"))
            return 0.0, table, kept
        table.reads = table.fired = 0
        started = time.process_time()
        for tick in ticks[WARM:]:
            await handle(tick)
        return time.process_time() - started, table, kept

    bare, _, _ = await run(False)
    ruled, table, _ = await run(True)
    ratio = ruled / bare
    _, _, bare_kept = await run(False, traced=True)
    _, _, ruled_kept = await run(True, traced=True)
    per_rule = (ruled_kept - bare_kept) / RULES
    records = MARKETS * TICKS
    return [
        Row("rules: handle() CPU per record, no rules", f"{bare / records * 1e6:.0f} µs"),
        Row(  # the goal is the process's (bench/rules_breadth.py): this is judging alone
            f"rules: handle() CPU per record, {RULES:,} rules / {MARKETS:,} markets",
            f"{ruled / records * 1e6:.0f} µs ({ratio:.2f}×)",
        ),
        Row(
            "rules: table reads per record (windows beyond the board's hour)",
            f"{table.reads / records:.3f}",
        ),
        Row(  # the goal is the process's RSS (bench/rules_breadth.py)
            "rules: Python objects kept per rule beyond no rules (book and windows)",
            f"{per_rule:.0f} B",
        ),
        Row(f"rules: fired in {TICKS} ticks", f"{table.fired}"),
    ]


async def load_and_follow(settings: Settings) -> list[Row]:
    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        rng = random.Random(3)
        markets = [Market("bench", f"m{i:05d}usd") for i in range(MARKETS)]
        levels = dict.fromkeys(markets, 100.0)
        rules = rules_over(markets, RULES, rng, levels)
        table = settings.table("rules")
        started = time.monotonic()
        for i in range(0, len(rules), 25):
            stamp = now_ms()
            items = [
                {"PutRequest": {"Item": rule_item(replace(r, changed=stamp))}}
                for r in rules[i : i + 25]
            ]
            pending: Any = {table: items}
            while pending:
                answer = await client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or None
        written = time.monotonic() - started
        judge = RuleJudge(store, None)
        started = time.monotonic()
        await judge.load()
        loaded = time.monotonic() - started
        checkpoint = Path(tempfile.mkdtemp()) / "bench.rules"
        judge.saved = checkpoint
        judge.save(judge.snapshot())
        again = RuleJudge(store, None, checkpoint)
        started = time.monotonic()
        await again.load()
        restored = time.monotonic() - started
        assert len(again.book) == len(judge.book) == RULES
        await asyncio.sleep(6)  # past the follower's overlap: it asks for new changes only
        # Changes while the follower runs: each written, then timed until the book has it.
        stop = asyncio.Event()
        follower = asyncio.create_task(judge.follow(stop))
        delays = []
        for rule in rules[:20]:
            changed = replace(rule, paused=True, changed=now_ms())
            at = time.monotonic()
            await client.put_item(TableName=table, Item=rule_item(changed))
            while not judge.book.rules[rule.id].paused:
                await asyncio.sleep(0.02)
            delays.append(time.monotonic() - at)
        stop.set()
        await follower
    return [
        Row(f"rules: {RULES:,} rules written to DynamoDB Local", f"{written:.1f} s"),
        Row(
            "rules: alerter first start → judging (every rule read from the table)",
            f"{loaded:.1f} s",
        ),
        Row(
            "rules: alerter restart → judging (its checkpoint + the changes since)",
            f"{restored:.1f} s",
            "≤ 10 s",
            verdict(restored <= 10),
        ),
        Row(
            "rules: a rule change effective, p99 of 20",
            f"{pct(delays, 0.99):.2f} s",
            "≤ 5 s",
            verdict(pct(delays, 0.99) <= 5),
        ),
    ]


async def crash_tick(settings: Settings, fires: int = 10_000) -> list[Row]:
    from notifier.worker import Deliverer
    from tests.helpers.receiver import receiving

    settings = settings.model_copy(
        update={
            "secret_key": SecretStr(new_secret_key()),
            "allow_targets": ["127.0.0.2/32"],
            "max_notifications": 10**6,
        }
    )
    async with aws.dynamodb(settings) as client, receiving("127.0.0.2") as receiver:
        await init_db(client, settings)
        store = Store(client, settings)
        channel = Channel(
            new_channel_id(),
            "crowd",
            "h",
            "webhook",
            {"url": receiver.url},
            time.time(),
            None,
            new_signing_secret(),
        )
        await ChannelsStore(store, Sealer(settings.sealing_key())).put(channel)
        market = Market("bitfinex", "btcusd")
        await store.put_points([Point(market, 1_800_000_000, 100.0, 1.0)])
        rules = [
            Rule(
                new_rule_id(),
                "crowd",
                f"r{i}",
                market,
                "price",
                CrossesAbove(150.0 + i * 1e-3),
                Terms("once", 0, 0),
                (channel.id,),
                0.0,
            )
            for i in range(fires)
        ]
        rules_store = RulesStore(store)
        for rule in rules:
            await rules_store.put(rule)
        judge = RuleJudge(store, None)
        await judge.load()
        stop = asyncio.Event()
        deliverer = Deliverer(settings, store)
        worker = asyncio.create_task(deliverer.main(stop))
        started = time.monotonic()
        await judge.judge_all([Point(market, 1_800_000_060, 200.0, 1.0)])
        judged = time.monotonic() - started
        while len(set(receiver.ids())) < fires and time.monotonic() - started < 600:
            await asyncio.sleep(0.2)
        done = time.monotonic() - started
        stop.set()
        await worker
        once = len(receiver.ids()) == len(set(receiver.ids())) == fires

    return [
        Row(f"rules: crash tick, {fires:,} rules fire → alerts recorded", f"{judged:.1f} s"),
        Row(
            f"rules: crash tick, {fires:,} rules fire → every webhook delivered",
            f"{done:.1f} s",
            "10,000 within 60 s",
            verdict(done * 10_000 / fires <= 60),
        ),
        Row(
            "rules: crash tick, each webhook-id received once",
            "yes" if once else "NO",
            "once",
            verdict(once),
        ),
    ]


async def user_with_rules(store: Store, n: int = 100) -> str:
    """A user "hundred" with `n` crossing rules on one market; their API key."""
    from common.users_store import UsersStore

    users = UsersStore(store)
    await users.add_user("hundred")
    _, key = await users.create_key("hundred")
    rules = RulesStore(store)
    market = Market("bitfinex", "btcusd")
    for i in range(n):
        rule = Rule(
            new_rule_id(),
            "hundred",
            f"r{i}",
            market,
            "price",
            CrossesAbove(150.0 + i),
            Terms("rearm", 60, 0),
            (),
            time.time(),
        )
        await rules.put(rule)
    return key


async def list_rules(settings: Settings, n: int = 100, calls: int = 200) -> list[Row]:
    """`GET /me/rules` of a user with `n` rules, in-process and sequential: as the user
    polls it (nothing changed between two calls), and after each change to their rules (made
    through the same replica, so that the next answer reads them again)."""
    from service.app import create_app

    async with aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        key = await user_with_rules(store, n)
        app = create_app(settings)
        steady: list[float] = []
        changed: list[float] = []
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as http,
        ):
            rules: RulesStore = app.state.tracker.accounts.rules
            for i in range(2 * calls):
                if i % 2:  # a change made through this replica: the rules are read again
                    await rules.bump(["hundred"])
                at = time.perf_counter()
                answer = await http.get("/me/rules", headers={"Authorization": f"Bearer {key}"})
                (changed if i % 2 else steady).append(time.perf_counter() - at)
                assert answer.status_code == 200 and len(answer.json()["rules"]) == n
    return [
        Row(
            f"rules: GET /me/rules ({n} rules), p99, in-process",
            ms(pct(steady, 0.99)),
            "≤ 20 ms",
            verdict(pct(steady, 0.99) <= 0.02),
        ),
        Row(
            f"rules: GET /me/rules ({n} rules) after each change, p99 (median), read again",
            f"{ms(pct(changed, 0.99))} ({ms(median(changed))})",
        ),
    ]


async def rules_bench(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    for part in (cpu, load_and_follow, crash_tick, list_rules):
        started = time.monotonic()
        rows += await part(settings)
        print(f"  {part.__name__}: {time.monotonic() - started:.0f} s", flush=True)
    return rows
