"""deploy/aws/tracker.yaml, loaded as CloudFormation reads it (short-form tags as intrinsics)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

TEMPLATE = Path(__file__).parents[2] / "deploy" / "aws" / "tracker.yaml"

# The template's resource behind each table of common/schema.py's TABLES.
TABLE_RESOURCES = {
    "points": "PointsTable",
    "alerts": "AlertsTable",
    "meta": "MetaTable",
    "users": "UsersTable",
    "keys": "KeysTable",
    "channels": "ChannelsTable",
    "rules": "RulesTable",
    "user-alerts": "UserAlertsTable",
    "deliveries": "DeliveriesTable",
}


@cache
def template() -> dict[str, Any]:
    loaded, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    assert loaded is not None
    return dict(loaded)


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {
        name: resource
        for name, resource in template()["Resources"].items()
        if resource["Type"] == kind
    }


def parameter_name(field: str) -> str:
    """The template parameter behind a settings field: `fetch_interval` → `FetchInterval`."""
    return "".join(part.title() for part in field.split("_"))
