"""One set of names: every setting's variable is documented in the README and .env.example,
and every TRACKER_* variable docker-compose.yml passes is a setting (a typo there would be
silently ignored by the settings model)."""

from __future__ import annotations

import re
from pathlib import Path

from common.settings import Settings, variable

ROOT = Path(__file__).parents[2]
# The SDK's region is read under either name; the README and .env.example use the other one.
ALIASES = {"AWS_REGION": "AWS_DEFAULT_REGION"}


def test_every_setting_is_in_the_readme_and_env_example() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    names = [variable(field) for field in Settings.model_fields]
    assert len(names) >= 40
    for name in names:
        shown = ALIASES.get(name, name)
        assert f"`{shown}`" in readme, name
        assert re.search(rf"^#? ?{shown}=", example, re.MULTILINE), name


def test_compose_passes_only_known_settings() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    passed = set(re.findall(r"^\s+(TRACKER_[A-Z_]+):", compose, re.MULTILINE))
    known = {variable(field) for field in Settings.model_fields}
    # Ports the compose file publishes on the host, not settings of any process.
    published = {"TRACKER_DEMO_PORT", "TRACKER_DYNAMODB_PORT"}
    assert passed, "no TRACKER_* variable found in docker-compose.yml"
    assert passed - known - published == set()
    for name in ("TRACKER_SECRET_KEY", "TRACKER_ALLOW_TARGETS", "TRACKER_DELIVERY_MAX_AGE"):
        assert name in passed
