"""docker-compose.yml without a Docker engine: it validates, and each app service's own
command and environment, run as a local process against DynamoDB Local, gets data to /symbols."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import dynamodb_local
from tests.e2e.conftest import TRACKER, Processes

ROOT = Path(__file__).parents[2]
COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    COMPOSE is None and os.geteuid() != 0,
    reason="docker-compose not installed (make install as root)",
)


def compose_config(env: dict[str, str]) -> dict[str, Any]:
    """The file as compose resolves it (anchors, interpolation, profiles)."""
    assert COMPOSE, "docker-compose is missing: make install installs Debian's package"
    out = subprocess.run(
        [COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "--profile", "demo", "config"],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(yaml.safe_load(out.stdout))


@needs_compose
def test_docker_compose_config_validates() -> None:
    """`docker-compose config -q` accepts the file."""
    assert COMPOSE
    result = subprocess.run(
        [COMPOSE, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@needs_compose
def test_compose_services_run_as_local_processes(dynamodb_url: str, processes: Processes) -> None:
    """init, demo, fetcher-demo, service and alerter — each with its compose command and
    environment, host names mapped to 127.0.0.1 — bring demo data to /symbols."""
    prefix = f"compose{int(time.time())}"
    config = compose_config({"TRACKER_TABLE_PREFIX": prefix, "TRACKER_FETCH_INTERVAL": "2"})
    services = config["services"]
    assert services["dynamodb"]["image"].startswith("amazon/dynamodb-local")
    demo_port, api_port = dynamodb_local.free_port(), dynamodb_local.free_port()
    hosts = {
        "http://dynamodb:8000": dynamodb_url,
        "http://demo:9000": f"http://127.0.0.1:{demo_port}",
    }

    def run(name: str, wait: bool = False) -> subprocess.Popen[bytes]:
        spec = services[name]
        env = {k: str(v) for k, v in (spec.get("environment") or {}).items() if v is not None}
        env = {k: hosts.get(v, v) for k, v in env.items()}
        if name == "service":
            env["TRACKER_PORT"] = str(api_port)
        command = list(spec["command"])
        assert command[0] == "tracker", command
        args = [*TRACKER, *command[1:]]
        if name == "demo":
            args[args.index("--port") + 1] = str(demo_port)
        process = processes.start(name, args, {"TRACKER_WORKER_ID": f"{prefix}-{name}", **env})
        if wait:
            assert process.wait(60) == 0, processes.log(name)
        return process

    assert services["init"]["depends_on"]["dynamodb"]["condition"] == "service_started"
    run("init", wait=True)
    run("demo")
    dynamodb_local.wait_for_port(demo_port)
    for name in ("fetcher-demo", "service", "alerter"):
        run(name)
    deadline = time.monotonic() + 90
    symbols: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(symbols) < 300:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/symbols", timeout=2) as r:
                symbols = json.loads(r.read())["symbols"]
        except OSError:
            pass
        time.sleep(0.5)
    assert len(symbols) >= 300, processes.log("fetcher-demo")[-2000:]
    assert {"exchange", "symbol", "price", "volume", "time"} <= set(symbols[0])
    for name in ("fetcher-demo", "alerter", "service"):
        assert processes.stop(name) == 0, processes.log(name)[-2000:]
