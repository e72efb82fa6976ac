"""pytest plugin (``-p _swap_pickle``): ``pickle.dumps``/``loads`` become devpersist's.

Used by ``test_sklearnex_suite.py`` to run scikit-learn-intelex's own pickling tests
unchanged: during each test call, the ``pickle`` module's ``dumps`` and ``loads`` are
``devpersist.dumps`` and ``devpersist.loads`` (default, safe options), and the number of
calls per test, with the test's outcome, is written to the JSON file named by
``DEVPERSIST_SWAP_REPORT``, so that a test which silently stopped using pickle cannot
count as a pass.

scikit-learn-intelex's test helpers (``onedal/tests/utils/_dataframes_support.py``)
import polars unconditionally although only its polars test cases use it; when polars
is not installed, a placeholder module (two empty classes) stands in so that the
helpers import, and is removed from ``sys.modules`` once the tests are collected (no
pickling test touches polars; a polars case would fail, not pass).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

import devpersist

_CALLS: dict[str, dict[str, Any]] = {}


def _key(item: pytest.Item) -> str:
    # Test ids repeat across sklearnex's modules (their nodeids are "::name" when run
    # with --pyargs from outside the package): qualify them with the module.
    module = getattr(getattr(item, "module", None), "__name__", "?")
    return f"{module}::{item.name}"


def pytest_configure(config: pytest.Config) -> None:
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("polars") is None:
        placeholder = types.ModuleType("polars")
        # Named in parametrize lists at import; nothing is ever an instance of them.
        placeholder.DataFrame = type("DataFrame", (), {})  # type: ignore[attr-defined]
        placeholder.Series = type("Series", (), {})  # type: ignore[attr-defined]
        placeholder._devpersist_placeholder = True  # type: ignore[attr-defined]
        sys.modules["polars"] = placeholder


def pytest_collection_finish(session: pytest.Session) -> None:
    import sys

    # Collected: out of sys.modules again, or dataframe libraries that look there for
    # polars (narwhals) would take the placeholder for the real thing.
    if getattr(sys.modules.get("polars"), "_devpersist_placeholder", False):
        del sys.modules["polars"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    counts = _CALLS.setdefault(_key(item), {"dumps": 0, "loads": 0})

    def dumps(obj: Any, *args: Any, **kwargs: Any) -> bytes:
        counts["dumps"] += 1
        return devpersist.dumps(obj)

    def loads(data: Any, *args: Any, **kwargs: Any) -> Any:
        counts["loads"] += 1
        return devpersist.loads(data)

    saved = pickle.dumps, pickle.loads
    pickle.dumps, pickle.loads = dumps, loads
    try:
        yield
    finally:
        pickle.dumps, pickle.loads = saved


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    entry = _CALLS.setdefault(_key(item), {"dumps": 0, "loads": 0})
    if call.excinfo is None:
        entry.setdefault("outcome", "passed")
    elif call.excinfo.errisinstance(pytest.skip.Exception):
        entry["outcome"] = "skipped"
    else:
        entry["outcome"] = f"{call.when} failed: {call.excinfo.exconly()[:300]}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("DEVPERSIST_SWAP_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(_CALLS, f)
