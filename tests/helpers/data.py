"""Payloads for tests: ours in the real shapes (tests/data/) and the real recorded answers
beside the checkout (../shared/recorded/, each file's source in its README; read from there,
never copied into the project)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parents[1] / "data"
RECORDED = Path(__file__).resolve().parents[3] / "shared" / "recorded"


def load(source: str, name: str) -> Any:
    """A payload written in the real shapes, from tests/data/<source>/<name>.json."""
    return json.loads((DATA / source / f"{name}.json").read_text())


def recorded(source: str, name: str) -> Any:
    """A real recorded answer, from ../shared/recorded/<source>/<name>.json."""
    path = RECORDED / source / f"{name}.json"
    assert path.exists(), f"recorded answer {path} missing: is shared/ beside the checkout?"
    return json.loads(path.read_text())


def recorded_names(source: str) -> list[str]:
    """Every recorded answer of `source`; a test parametrised on it fails on none (the
    suite's `empty_parameter_set_mark`)."""
    return sorted(p.stem for p in (RECORDED / source).glob("*.json"))


class Pages:
    """A fake `get` serving answers by path (query strings included)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, path: str) -> Any:
        self.asked.append(path)
        return self.answers[path]
