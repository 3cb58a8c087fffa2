"""deploy/prometheus/alerts.yml: every rule parses as PromQL, is complete, and names only
metrics the service exports (a rule on a renamed metric would never fire)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from service.metrics import Metrics

RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def exported() -> set[str]:
    """Every series name the service's registry can expose."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names |= {f"{family.name}{s}" for s in ("_bucket", "_count", "_sum", "_total")}
    return names


@pytest.mark.parametrize("rule", rules(), ids=lambda r: str(r["alert"]))
def test_rule_parses_and_names_exported_metrics(rule: dict[str, Any]) -> None:
    """The expression parses, the rule has a summary and a severity, and each metric it
    selects is one the service exports."""
    expr = promql_parser.parse(rule["expr"])
    selected = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", str(expr)))
    assert selected and selected <= exported(), selected - exported()
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]
    if "for" in rule:
        assert re.fullmatch(r"\d+[smh]", rule["for"])
