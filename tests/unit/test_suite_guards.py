"""Guards on the suite itself: every test asserts something (directly, with `pytest.raises`,
or through a named helper that asserts), no test module imports another, and a
parametrised test with no cases fails instead of vanishing from the run."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.waiting import until, wait_for

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent


def sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _called(node: ast.AST) -> Iterator[str]:
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                yield call.func.id
            elif isinstance(call.func, ast.Attribute):
                yield call.func.attr


def _asserts_itself(node: ast.AST) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Assert):
            return True
        if isinstance(child, ast.Raise) and "AssertionError" in ast.unparse(child):
            return True
        if isinstance(child, ast.Call) and ast.unparse(child.func) in {
            "pytest.raises",
            "pytest.fail",
        }:
            return True
    return False


def asserting_helpers(modules: list[ast.Module]) -> set[str]:
    """The names of the functions under tests/ that assert, themselves or through another
    such function (a fixpoint over calls by name)."""
    functions: dict[str, list[ast.AST]] = {}
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(node.name, []).append(node)
    asserting = {n for n, defs in functions.items() if any(_asserts_itself(d) for d in defs)}
    while True:
        more = {
            name
            for name, defs in functions.items()
            if name not in asserting and any(set(_called(d)) & asserting for d in defs)
        }
        if not more:
            return asserting
        asserting |= more


def unchecked_tests(modules: dict[str, ast.Module]) -> list[str]:
    """Every `test*` function that neither asserts nor calls a helper that does."""
    helpers = asserting_helpers(list(modules.values()))
    found = []
    for name, module in modules.items():
        for node in ast.walk(module):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.name.startswith("test"):  # what pytest collects
                continue
            if _asserts_itself(node) or set(_called(node)) & helpers:
                continue
            found.append(f"{name}::{node.name}")
    return found


def test_every_test_checks_something() -> None:
    modules = dict(sources())
    assert len(modules) > 40
    assert unchecked_tests(modules) == []


def test_the_guard_finds_a_test_that_checks_nothing() -> None:
    """The guard itself: a test that only waits, or calls a helper that never asserts, is
    found; one whose helper asserts two calls down is not."""
    module = ast.parse(
        "import asyncio, pytest\n"
        "def quiet(x): return x\n"
        "def deep(x): assert x\n"
        "def checks(x): deep(x)\n"
        "async def test_sleeps(): await asyncio.sleep(1)\n"
        "def test_quiet(): quiet(1)\n"
        "def test_through_two(): checks(1)\n"
        "def test_raises():\n    with pytest.raises(KeyError):\n        {}[1]\n"
    )
    assert unchecked_tests({"m.py": module}) == ["m.py::test_sleeps", "m.py::test_quiet"]


def test_no_test_module_imports_another() -> None:
    """Shared code lives in tests/helpers/ (and the references beside it): a test module, or
    a conftest, imports none of test_*.py or conftest.py."""
    wrong = []
    for name, module in sources():
        for node in ast.walk(module):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                last = node.module.rsplit(".", 1)[-1]
                if last.startswith("test_") or last == "conftest":
                    wrong.append(f"{name}: from {node.module}")
    assert wrong == []


def test_a_parametrised_test_with_no_cases_fails(tmp_path: Path) -> None:
    """The suite's `empty_parameter_set_mark`: zero cases (say, an empty recorded folder)
    fail the run at collection, where pytest's default would skip and stay green."""
    module = tmp_path / "test_empty.py"
    module.write_text(
        "import pytest\n\n@pytest.mark.parametrize('x', [])\ndef test_x(x):\n    assert x\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), str(module)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode != 0, run.stdout
    assert "Empty parameter set in 'test_x'" in run.stdout, run.stdout[-2000:]


def test_a_wait_that_runs_out_fails_saying_what_it_waited_for() -> None:
    """A deadline that runs out fails the test, naming the condition and what was seen."""
    with pytest.raises(AssertionError, match=r"the thing not met within 0\.2 s; last seen: 7"):
        until(lambda: False, 0.2, "the thing", lambda: 7)


async def test_an_async_wait_that_runs_out_fails() -> None:
    with pytest.raises(AssertionError, match=r"the thing not met within 0\.2 s"):
        await wait_for(lambda: 0, 0.2, "the thing")
    assert await wait_for(lambda: [1], 0.2, "a value") == [1]
