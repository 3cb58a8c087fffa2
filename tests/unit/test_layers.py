"""The package layering: `common` stands on nothing of ours, each service stands on `common`
alone, and the `tracker` command sits above them all; each service runs on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SERVICES = ("fetcher", "service", "alerter", "notifier")


def imported(package: str) -> set[str]:
    """The top-level packages a package's modules import (at any depth in the module)."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_common_imports_nothing_above_it() -> None:
    """`common` imports none of the services, the demo or the command-line app."""
    assert imported("common") & {*SERVICES, "demo", "tracker"} == set()


@pytest.mark.parametrize("package", SERVICES)
def test_each_service_stands_on_common_alone(package: str) -> None:
    """A service imports neither another service nor the command-line app above it."""
    others = {*SERVICES, "tracker"} - {package}
    assert imported(package) & others == set()


@pytest.mark.parametrize("package", SERVICES)
def test_python_m_service_runs_on_its_own(package: str) -> None:
    """`python -m <service> --help` answers without the `tracker` command's help."""
    out = subprocess.run(
        [sys.executable, "-m", package, "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: python -m {package}")
