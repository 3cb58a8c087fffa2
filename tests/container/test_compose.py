"""docker-compose.yml for real: the image built from the Dockerfile and the unmodified compose
file run on this machine's Docker engine (its demo profile, with a quick clock set the way a
user sets it, through the environment; after `down`, the live profile's fetcher pointed at the
demo exchange through the environment), and everything checked through the published ports:
readiness, a rank, a 3.5× spike giving exactly one alert, every stored point kept across
`stop`/`start` and `down`/`up`, each container stopping on SIGTERM with status 0 and the
fetcher's buffer written, and `down -v` leaving nothing behind. A user added with `tracker users
add` in the service container gets the spike through their own rule as a Standard Webhook sent
by the delivery worker's container, verified here with the `standardwebhooks` package. Prints
the figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers.exchange import control
from tests.helpers.processes import answer, ticks_done
from tests.helpers.waiting import until
from tracker.dynamodb_local import free_port

ROOT = Path(__file__).parents[2]
IMAGE = "crypto-tracker:latest"
BASE = "python:3.11-slim-bookworm"
PREFIX = "tracker"  # the compose file's default TRACKER_TABLE_PREFIX
SECRET_KEY = "x" * 20 + "a-random-enough-test-key-of-44"
INTERVAL = 2
MIN_POINTS = 5
# Stopped in this order, then dynamodb.
WORKERS = ("fetcher-demo", "alerter", "notifier", "service", "demo")
# Docker's default address pools: the demo's webhook sink lives on the compose network, a
# private address the operator must allow (as one would a receiver on their LAN).
DOCKER_NETWORKS = "172.16.0.0/12,192.168.0.0/16,10.0.0.0/8"

# Cold, the base images and the build alone take minutes: above the suite's per-test limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _run(args: list[str], timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def _engine_up() -> bool:
    return shutil.which("docker") is not None and _run(["docker", "info"], 30).returncode == 0


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A running Docker engine (started here when installed, stopped, and we are root) and
    the compose client's command: `docker compose` (v2) where it exists, else docker-compose."""
    started: subprocess.Popen[bytes] | None = None
    if not _engine_up():
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            pytest.skip("no Docker engine can run here (not root, or dockerd not installed)")
        with open(tmp_path_factory.mktemp("dockerd") / "dockerd.log", "wb") as log:
            # The daemon keeps its own copy of the descriptor.
            started = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT)
        until(_engine_up, 60, "dockerd up")
    if _run(["docker", "compose", "version"], 30).returncode == 0:
        client = ["docker", "compose"]
    else:
        assert shutil.which("docker-compose"), "no compose client: make install brings one"
        client = ["docker-compose"]
    yield client
    if started is not None:
        started.terminate()
        started.wait(30)


@dataclass
class Stack:
    """The compose project under test, its published ports and the figures to print."""

    client: list[str]
    project: str
    api: int
    demo: int
    dynamodb: int
    figures: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # settings a step adds, as a user would

    @property
    def env(self) -> dict[str, str]:
        # The caller's environment without anything that would re-point the containers.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRACKER_"))}
        return (
            env
            | {
                "COMPOSE_PROJECT_NAME": self.project,
                "TRACKER_PORT": str(self.api),
                "TRACKER_DEMO_PORT": str(self.demo),
                "TRACKER_DYNAMODB_PORT": str(self.dynamodb),
                "TRACKER_FETCH_INTERVAL": str(INTERVAL),
                "TRACKER_RANK_WINDOW": "600",
                "TRACKER_ALERT_WINDOW": str(INTERVAL * 10),
                "TRACKER_ALERT_MIN_POINTS": str(MIN_POINTS),
                "TRACKER_ALERT_COOLDOWN": "600",  # one spike, one alert, whatever follows
                "TRACKER_SECRET_KEY": SECRET_KEY,
                "TRACKER_ALLOW_TARGETS": DOCKER_NETWORKS,
            }
            | self.extra
        )

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        cmd = [*self.client, "-f", str(ROOT / "docker-compose.yml"), "--profile", "demo", *args]
        result = _run(cmd, timeout, env=self.env, cwd=ROOT)
        if check:
            assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def up(self) -> None:
        """The README's demo command, detached."""
        self.compose("up", "-d", "--scale", "fetcher=0")

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def state(self, service: str) -> dict[str, Any]:
        out = _run(["docker", "inspect", "-f", "{{json .State}}", self.container(service)])
        return dict(json.loads(out.stdout))

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False)

    def get(self, path: str) -> tuple[int, Any]:
        return answer(f"http://127.0.0.1:{self.api}{path}")

    def post(self, path: str, body: Any, key: str) -> tuple[int, Any]:
        auth = {"authorization": f"Bearer {key}"}
        return answer(f"http://127.0.0.1:{self.api}{path}", body or {}, auth, 15, "POST")

    def ranking(self) -> dict[str, Any] | None:
        """/rank's answer once there are figures (503 "not ready yet" before the first board)."""
        status, body = self.get("/rank")
        return dict(body) if status == 200 else None

    def stored(self) -> set[tuple[str, int]]:
        """Every point's key, read through DynamoDB's published port."""
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{self.dynamodb}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        keys: set[tuple[str, int]] = set()
        for page in client.get_paginator("scan").paginate(
            TableName=f"{PREFIX}-points", ProjectionExpression="m, t"
        ):
            keys |= {(i["m"]["S"], int(i["t"]["N"])) for i in page["Items"]}
        return keys


def healthy(stack: Stack) -> bool:
    services = ("dynamodb", *WORKERS)
    return all(stack.state(s).get("Health", {}).get("Status") == "healthy" for s in services)


@pytest.fixture(scope="module")
def stack(engine: list[str]) -> Iterator[Stack]:
    """Base images ready (stand-ins where no registry answers), the image built, and the
    project torn down with its volume whatever happens."""
    base = _run(["bash", str(ROOT / "scripts/base-images.sh")], 900)
    assert base.returncode == 0, base.stdout + base.stderr
    stack = Stack(engine, f"trackertest{os.getpid()}", free_port(), free_port(), free_port())
    started = time.monotonic()
    stack.compose("build", timeout=900)
    stack.figures["build (this run)"] = f"{time.monotonic() - started:.1f} s"
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


def layers_above_base() -> int:
    def size(image: str) -> int:
        return int(_run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout)

    return size(IMAGE) - size(BASE)


def test_compose_up_for_real(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """The compose file as users run it serves ready data, ranks and exactly one alert per
    spike; stops cleanly; keeps every stored point across restarts; leaves nothing behind."""
    above = layers_above_base()
    stack.figures["image above its base"] = f"{above / 1e6:.0f} MB"
    assert _run(["docker", "image", "inspect", "-f", "{{.Config.User}}", IMAGE]).stdout.strip()

    started = time.monotonic()
    stack.up()
    until(lambda: (stack.ranking() or {}).get("total", 0) > 0, 120, "the first rank")
    stack.figures["up → first rank"] = f"{time.monotonic() - started:.1f} s"
    until(lambda: healthy(stack), 120, "every container healthy")
    stack.figures["up → all healthy"] = f"{time.monotonic() - started:.1f} s"
    assert stack.state("init")["ExitCode"] == 0

    status, ready = stack.get("/readyz")
    assert status == 200, ready
    # Every demo market ranked: a board from before the second tick of all of them has fewer.
    until(lambda: (stack.ranking() or {}).get("total", 0) >= 300, 120, "300 markets ranked")
    status, rank = stack.get("/rank?limit=5")
    assert status == 200 and rank["total"] >= 300 and len(rank["ranking"]) == 5, rank
    assert rank["ranking"][0]["rank"] == 1 and rank["ranking"][0]["count"] >= 2

    # A 3.5× spike of BTC/USD through the demo exchange's published control port.
    def btc_points() -> int:
        return len(stack.get("/symbols/btcusd/history")[1]["points"])

    until(lambda: btc_points() > MIN_POINTS + 1, 120, "a full alert window")

    # A user, a webhook to the demo's sink on the compose network, a rule over twice BTC/USD.
    added = stack.compose("exec", "-T", "service", "tracker", "users", "add", "alice")
    (key,) = re.findall(r"^trk_\S+$", added, re.MULTILINE)
    status, channel = stack.post(
        "/me/channels",
        {"name": "sink", "kind": "webhook", "url": "http://demo:9000/webhooks/a"},
        key,
    )
    assert status == 201, channel
    status, tested = stack.post(f"/me/channels/{channel['id']}/test", None, key)
    assert status == 200 and tested == {"delivered": True, "status": 200, "error": None}, tested
    price = stack.get("/symbols/btcusd")[1]["price"]
    rule = {
        "name": "BTC doubles",
        "exchange": "bitfinex",
        "symbol": "btcusd",
        "condition": {"kind": "crosses_above", "level": 2 * price},
        "channels": [channel["id"]],
    }
    status, made = stack.post("/me/rules", rule, key)
    assert status == 201, made
    until(
        lambda: "1 user rule change" in stack.logs("alerter"), 120, "the alerter holding the rule"
    )

    spike = {"symbol": "btcusd", "factor": 3.5}
    assert control(f"http://127.0.0.1:{stack.demo}", "/control/price", spike)["ok"]
    alerts = until(lambda: stack.get("/alerts")[1]["alerts"], 120, "the alert")
    seen = btc_points()
    until(lambda: btc_points() >= seen + 3, 120, "three more ticks")
    alerts = stack.get("/alerts")[1]["alerts"]
    assert [(a["exchange"], a["symbol"]) for a in alerts] == [("bitfinex", "btcusd")], alerts
    assert alerts[0]["ratio"] >= 3

    def users_webhook() -> Any:
        hooks = control(f"http://127.0.0.1:{stack.demo}", "/control/webhooks")["webhooks"]
        return [h for h in hooks if json.loads(h["body"]).get("type") == "alert"]

    (sent,) = until(users_webhook, 120, "the user's webhook, through the delivery worker")
    verified = Webhook(channel["secret"]).verify(sent["body"], sent["headers"])
    assert verified["rule"]["name"] == "BTC doubles" and verified["alert"]["value"] > 2 * price
    assert sent["headers"]["webhook-id"] == verified["alert"]["id"]

    # SIGTERM, one container at a time: each stops within its grace period with status 0.
    for service in WORKERS:
        began = time.monotonic()
        stack.compose("stop", "-t", "30", service)
        state = stack.state(service)
        stack.figures[f"stop {service}"] = (
            f"{time.monotonic() - began:.1f} s, exit {state['ExitCode']}"
        )
        assert not state["Running"] and state["ExitCode"] == 0, (service, state)
    fetcher_log = stack.logs("fetcher-demo")
    assert "every fetched point is written" in fetcher_log, fetcher_log[-2000:]
    last_tick = ticks_done(fetcher_log)[-1]
    before = stack.stored()
    assert len({m for m, t in before if t == last_tick}) >= 300, "the last tick is not stored"
    began = time.monotonic()
    stack.compose("stop", "-t", "30", "dynamodb")
    state = stack.state("dynamodb")
    stack.figures["stop dynamodb"] = f"{time.monotonic() - began:.1f} s, exit {state['ExitCode']}"
    assert state["ExitCode"] == 0, state

    # `start` again: the named volume kept every point; the stack serves fresh figures.
    stack.compose("start")
    until(
        lambda: stack.state("dynamodb").get("Health", {}).get("Status") == "healthy",
        120,
        "DynamoDB back",
    )
    after = until(stack.stored, 120, "points readable")
    assert before <= after, f"{len(before - after)} point(s) lost across stop/start"
    until(
        lambda: (stack.ranking() or {}).get("window_end", "") > rank["window_end"],
        120,
        "a fresh rank",
    )

    # `down` without -v, then `up` with the live profile's fetcher (the `fetcher` service, not
    # the demo's), pointed at the demo exchange through the environment as a user points it
    # at their own mirror: still every point, and the live fetcher stores whole ticks.
    stack.compose("down")
    stack.extra |= {
        "TRACKER_SOURCES": "bitfinex,cryptowatch",
        "TRACKER_BITFINEX_URL": "http://demo:9000",
        "TRACKER_CRYPTOWATCH_URL": "http://demo:9000",
    }
    stack.compose("up", "-d", "--scale", "fetcher-demo=0")
    after = until(stack.stored, 120, "points readable after down/up")
    assert before <= after, f"{len(before - after)} point(s) lost across down/up"
    until(lambda: stack.get("/readyz")[0] == 200, 120, "ready again")

    def fetched_tick() -> int | None:
        """The first tick the live fetcher fetched (with figures: its first ones may come
        before the demo exchange answers, and have none)."""
        return next(iter(ticks_done(stack.logs("fetcher"), min_pairs=1)), None)

    t = until(fetched_tick, 120, "a tick fetched by the live fetcher")
    # Logged once fetched; its points are written a moment later.
    until(lambda: len({m for m, at in stack.stored() if at == t}) >= 300, 120, f"tick {t} stored")
    stack.figures["live fetcher, env-pointed: a whole tick stored"] = str(t)
    assert stack.compose("ps", "-q", "fetcher-demo").split() == []

    stack.compose("down", "-v")
    label = f"label=com.docker.compose.project={stack.project}"
    for kind in ("container", "volume", "network"):
        left = _run(
            ["docker", kind, "ls", "-q", "--filter", label]
            + (["-a"] if kind == "container" else [])
        )
        assert left.stdout.strip() == "", f"{kind}s left behind: {left.stdout}"

    width = max(map(len, stack.figures))
    with capsys.disabled():  # the figures are for whoever runs `make test`
        print("\n" + "\n".join(f"{k:<{width}}  {v}" for k, v in stack.figures.items()))
