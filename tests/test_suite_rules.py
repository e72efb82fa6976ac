"""Rules the test suite keeps about itself, checked on its source (no test module imported).

A missing optional library must skip the tests that need it, not the whole module: a
module-level ``pytest.importorskip`` (or ``pytest.skip(allow_module_level=True)``) once
hid the entire hostile-input suite when one library was absent. Optional libraries are
skipped in the fixture or test that needs them; test requirements are imported plainly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def module_level_skips(source: str) -> list[int]:
    """Lines where ``source`` skips at import time: calls outside any function body."""
    found: list[int] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return  # runs when called, not at import (decorators and defaults are outside)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            module_level = any(
                k.arg == "allow_module_level"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            )
            if name == "importorskip" or (name == "skip" and module_level):
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    tree = ast.parse(source)
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for outside in [*statement.decorator_list, statement.args]:
                visit(outside)
        else:
            visit(statement)
    return sorted(found)


def test_no_test_module_skips_itself_at_import():
    offenders = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if (lines := module_level_skips(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"module-level skips (move them into a fixture or test): {offenders}"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("import pytest\nxp = pytest.importorskip('array_api_strict')\n", [2]),
        ("from pytest import importorskip\nimportorskip('torch')\n", [2]),
        ("import pytest\nif True:\n    pytest.importorskip('torch')\n", [3]),
        ("import pytest\nclass T:\n    torch = pytest.importorskip('torch')\n", [3]),
        ("import pytest\npytest.skip('no', allow_module_level=True)\n", [2]),
        (
            "import pytest\n@pytest.mark.skipif(pytest.importorskip('x'), reason='')\ndef t(): pass\n",
            [2],
        ),
        ("import pytest\ndef t():\n    pytest.importorskip('torch')\n", []),
        ("import pytest\n@pytest.fixture\ndef f():\n    return pytest.importorskip('s3fs')\n", []),
        ("import pytest\nmake = lambda: pytest.importorskip('joblib')\n", []),
        ("import pytest\ndef t():\n    pytest.skip('later')\n", []),
    ],
    ids=[
        "assigned",
        "imported-name",
        "inside-if",
        "class-body",
        "skip-allow-module-level",
        "in-a-decorator",
        "in-a-test",
        "in-a-fixture",
        "in-a-lambda",
        "skip-in-a-test",
    ],
)
def test_the_scan_finds_module_level_skips_and_only_those(source: str, lines: list[int]):
    assert module_level_skips(source) == lines
