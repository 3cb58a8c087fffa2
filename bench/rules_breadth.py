"""`make bench-scale` stage `rules`: users' rules at breadth, with real processes.

The breadth run (bench/breadth.py: the demo exchange serving 20,000 markets, fetcher, alerter,
service at one-minute ticks, two markets spiked ×4 a tick) twice, each on a fresh in-memory
DynamoDB Local: with 100,000 users' rules (five per market: one of each kind, windows 1 h to
24 h, plus one that fires on a spike and delivers to a webhook through `tracker deliver`),
then with none. Per run, from
its third tick on: the alerter process's CPU (utime + stime, /proc) per record it handled (its
heartbeat's count), and its RSS at the end; with rules, each spike's write → the user's
webhook received.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.breadth import ALERT_WINDOW, BREADTH, RANK_WINDOW, Breadth, p99, rss
from bench.raw import batch_write
from bench.report import Row, verdict
from common import aws
from common.channels import Channel, new_signing_secret
from common.channels_store import ChannelsStore, new_channel_id
from common.conditions import AverageMultiple, Change, Condition, CrossesAbove, CrossesBelow, Terms
from common.db import Store
from common.models import Market
from common.rules import Rule
from common.rules_store import new_rule_id, now_ms, rule_item
from common.schema import init_db
from common.sealed import Sealer, new_secret_key
from common.users_store import UsersStore
from tracker import dynamodb_local

PER_MARKET = 5  # rules per market: one of each kind and one that fires on a spike
WINDOWS = (3600, 4 * 3600, 12 * 3600, 86400)
WARM = 2  # ticks before the CPU is counted (markets loaded, windows read whole)
CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime, stime


def background(market: Market, price: float, kind: int, rng: random.Random) -> Condition:
    if kind == 0:
        return CrossesAbove(price * rng.uniform(1.001, 1.05))
    if kind == 1:
        return CrossesBelow(price * rng.uniform(0.95, 0.999))
    if kind == 2:
        return Change(rng.choice((1.0, 5.0, 10.0)), rng.choice(WINDOWS), "any")
    return AverageMultiple(rng.choice((1.5, 2.0, 3.0)), rng.choice(WINDOWS), 30, "above")


async def seed(store: Store, prices: dict[str, float], hook: str) -> int:
    """The rules, written straight to the table (as the API writes them), and the channel
    the spike rules deliver to."""
    settings = store.settings
    await UsersStore(store).add_user("bench")
    channel = Channel(
        new_channel_id(),
        "bench",
        "hook",
        "webhook",
        {"url": hook},
        time.time(),
        None,
        new_signing_secret(),
    )
    await ChannelsStore(store, Sealer(settings.sealing_key())).put(channel)
    rng = random.Random(11)
    rules: list[Rule] = []
    for n, (key, price) in enumerate(prices.items()):
        market = Market.from_key(key)
        for kind in range(PER_MARKET - 1):
            condition = background(market, price, kind, rng)
            rules.append(
                Rule(
                    new_rule_id(),
                    f"u{n % 1000}",
                    f"r{kind}",
                    market,
                    "price",
                    condition,
                    Terms("rearm", 3600, 0),
                    (),
                    0.0,
                    changed=now_ms(),
                )
            )
        rules.append(
            Rule(
                new_rule_id(),
                "bench",
                "spike",
                market,
                "price",
                AverageMultiple(3.0, 3600, 3, "above"),
                Terms("rearm", 0, 0),
                (channel.id,),
                0.0,
                changed=now_ms(),
            )
        )
    items = [rule_item(r) for r in rules]
    await batch_write(store.client, settings.table("rules"), items, concurrency=8)
    return len(rules)


async def one_run(url: str, scratch: Path, minutes: float, ruled: bool) -> dict[str, Any]:
    prefix = "ruled" if ruled else "plain"
    run = Breadth(url, scratch, prefix, RANK_WINDOW, ALERT_WINDOW)
    key = new_secret_key()
    run.env |= {
        "TRACKER_SECRET_KEY": key,
        "TRACKER_ALLOW_TARGETS": "127.0.0.1/32",
        "TRACKER_MAX_NOTIFICATIONS": "1000000",
    }
    settings = run.settings.model_copy(update={"secret_key": SecretStr(key)})
    run.users = {} if ruled else None
    from demo.webhook import receiving

    out: dict[str, Any] = {"rules": 0}
    async with receiving(run.on_post) as hook, aws.dynamodb(settings) as client:
        await init_db(client, settings)
        store = Store(client, settings)
        try:
            prices = run.start_demo()
            if ruled:
                started = time.monotonic()
                out["rules"] = await seed(store, prices, hook.replace("json://", "http://"))
                print(f"  {out['rules']:,} rules written in {time.monotonic() - started:.0f} s")
            run.start_workers(hook)
            alerter = run.processes["alerter"].pid
            marks: list[tuple[float, float]] = []

            async def mark(n: int) -> None:
                if n == WARM or n == -1:
                    beat = await store.get_heartbeat("alerter") or {}
                    marks.append((cpu_seconds(alerter), float(beat.get("records", 0))))

            seen = await run.ticks(store, list(prices), minutes, mark)
            await asyncio.sleep(6)  # one more heartbeat after the last tick
            await mark(-1)
            out["rss"] = rss(alerter)
        except BaseException:
            run.tails()
            raise
        finally:
            run.stop()
    (cpu0, records0), (cpu1, records1) = marks
    out["per_record"] = (cpu1 - cpu0) / max(1.0, records1 - records0)
    out["records"] = records1 - records0
    out["seen"] = seen
    return out


async def fresh_run(scratch: Path, minutes: float, ruled: bool) -> dict[str, Any]:
    """One run on its own in-memory DynamoDB Local: one that has held a run already is
    slower (every stream record it keeps), which would count against the second."""
    port = dynamodb_local.free_port()
    ddb = dynamodb_local.start(port, None)
    try:
        return await one_run(f"http://127.0.0.1:{port}", scratch, minutes, ruled)
    finally:
        ddb.terminate()
        ddb.wait(30)


async def rules_breadth(scratch: Path, minutes: float) -> list[Row]:
    ruled = await fresh_run(scratch, minutes, ruled=True)
    plain = await fresh_run(scratch, minutes, ruled=False)
    ratio = ruled["per_record"] / plain["per_record"]
    per_rule = (ruled["rss"] - plain["rss"]) / ruled["rules"]
    seen = ruled["seen"]
    latency = p99(seen.user_latencies)
    every = len(seen.user_latencies) == seen.expected > 0
    return [
        Row(
            f"7. users' rules: {ruled['rules']:,} over {BREADTH:,} markets, {seen.ticks} "
            "one-minute ticks, real processes (against the same run with none)",
            "",
        ),
        Row(
            "   alerter CPU per record, no rules",
            f"{plain['per_record'] * 1e6:.0f} µs ({plain['records']:,.0f} records)",
        ),
        Row(
            "   alerter CPU per record, with the rules",
            f"{ruled['per_record'] * 1e6:.0f} µs ({ratio:.2f}×)",
            "≤ 1.5× no rules",
            verdict(ratio <= 1.5),
        ),
        Row(
            "   alerter RSS beyond the no-rule run, per rule",
            f"{per_rule:.0f} B",
            "≤ 1 KB",
            verdict(per_rule <= 1024),
        ),
        Row(
            f"   write → user's webhook delivered, p99 ({len(seen.user_latencies)}/"
            f"{seen.expected} spikes)",
            f"{latency:.1f} s",
            "≤ 5 s, every spike",
            verdict(every and latency <= 5),
        ),
    ]
