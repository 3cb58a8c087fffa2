"""Run the real DynamoDB Local (the jar `make install` unpacks) as a child process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = ROOT / ".cache" / "dynamodb-local" / "package" / "emulator"


class DynamoDBLocalMissing(RuntimeError):
    pass


def home() -> Path:
    path = Path(os.environ.get("TRACKER_DYNAMODB_LOCAL_HOME", DEFAULT_HOME))
    if not (path / "DynamoDBLocal.jar").is_file():
        raise DynamoDBLocalMissing(f"DynamoDB Local is not installed at {path}: run `make install`")
    if shutil.which("java") is None:
        raise DynamoDBLocalMissing("java is not on PATH: install a Java 17 runtime (make install)")
    return path


def command(port: int, data: Path | None) -> list[str]:
    """`java ... -jar DynamoDBLocal.jar` with data kept under `data`, or in memory if None."""
    where = home()
    storage = ["-sharedDb", "-dbPath", str(data)] if data else ["-inMemory"]
    return [
        "java",
        f"-Djava.library.path={where / 'DynamoDBLocal_lib'}",
        "-jar",
        str(where / "DynamoDBLocal.jar"),
        *storage,
        "-port",
        str(port),
        "-disableTelemetry",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.05)


def start(port: int, data: Path | None, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start DynamoDB Local in the background and return once it accepts connections."""
    if data:
        data.mkdir(parents=True, exist_ok=True)
    if log:
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            # The java command line we build ourselves (no shell, no user input).
            process = subprocess.Popen(  # noqa: S603
                command(port, data), stdout=out, stderr=subprocess.STDOUT
            )
    else:
        process = subprocess.Popen(command(port, data), stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process
