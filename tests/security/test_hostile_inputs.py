"""Hostile inputs: every one is rejected with a specific devpersist error, executing nothing.

The cases are data (``hostile_cases/``, one module per family); the detectors that prove
nothing ran are in ``_guard.py``.

Where a case lists several acceptable errors, more than one sound fix exists (a resource
limit, or refusing to call the function at all); one specific error is still required.
A case that fails here is a loader bug: fix the loader, not the expectation.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _guard import TOKEN, Guard
from hostile_cases import CASES
from hostile_cases.build import Case

import devpersist
from devpersist import DevpersistError


def test_case_ids_are_unique_and_many():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 20


def test_every_case_table_is_collected():
    """A family module of ``hostile_cases`` holds one ``*_CASES`` list, and ``CASES``
    runs all of it: a new family left out of ``hostile_cases/__init__.py`` would run
    nothing without this test."""
    import hostile_cases

    ids = {case.id for case in CASES}
    families = [m.name for m in pkgutil.iter_modules(hostile_cases.__path__) if m.name != "build"]
    assert len(families) >= 12, families
    for family in families:
        module = importlib.import_module(f"hostile_cases.{family}")
        tables = [value for key, value in vars(module).items() if key.endswith("_CASES")]
        assert len(tables) == 1 and tables[0], family
        assert {case.id for case in tables[0]} <= ids, family


@pytest.mark.parametrize("via", ["bytes", "path"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_rejected_and_nothing_runs(case: Case, via: str, guard: Guard):
    data = case.make(guard.canary)
    guard.watching(*case.watch)
    try:
        with pytest.raises(DevpersistError) as info:
            loaded = guard.load(data, via=via, quiet=case.quiet)
            del loaded
        assert type(info.value) in case.expect, (
            f"expected {[e.__name__ for e in case.expect]}, got "
            f"{type(info.value).__name__}: {info.value}"
        )
        for module, name in case.untrusted:
            listed = info.value.untrusted  # type: ignore[attr-defined]
            assert f"{module}.{name}" in listed or repr((module, name)) in listed, listed
    finally:
        guard.verify()


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.untrusted], ids=[c.id for c in CASES if c.untrusted]
)
def test_untrusted_names_are_reported_without_running_anything(case: Case, guard: Guard):
    """info() and get_untrusted_types() read such files without executing them."""
    data = case.make(guard.canary)
    guard.watching(*case.watch)
    try:
        manifest = guard.call(devpersist.info, data)
        assert manifest["file_size"] == len(data)
        listed = guard.call(devpersist.get_untrusted_types, data)
        for module, name in case.untrusted:
            assert f"{module}.{name}" in listed or repr((module, name)) in listed, listed
    finally:
        guard.verify()


FRESH_IMPORT_CASES = [c for c in CASES if c.watch]


def test_names_are_judged_before_anything_is_imported_in_a_fresh_interpreter(tmp_path: Path):
    """In a fresh process (nothing imported by other tests), rejected names import nothing
    from the watched modules: the verdict on a name comes before its import."""
    files = []
    watch: set[str] = set()
    for i, case in enumerate(FRESH_IMPORT_CASES):
        path = tmp_path / f"case{i}.dvp"
        path.write_bytes(case.make(str(tmp_path / TOKEN)))
        files.append((case.id, str(path), list(case.watch)))
        watch |= set(case.watch)
    script = textwrap.dedent(
        """
        import json, sys
        import devpersist, sklearn.base, sklearn.linear_model
        files = json.loads(sys.argv[1])
        report = {}
        for case_id, path, watch in files:
            before = set(sys.modules)
            try:
                devpersist.load(path)
                outcome = "loaded"
            except devpersist.DevpersistError as exc:
                outcome = type(exc).__name__
            new = sorted(m for m in set(sys.modules) - before
                         if any(m == w or m.startswith(w + ".") for w in watch))
            report[case_id] = [outcome, new]
        print(json.dumps(report))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    imported = {case_id: new for case_id, (outcome, new) in report.items() if new}
    loaded = [case_id for case_id, (outcome, _) in report.items() if outcome == "loaded"]
    assert not loaded
    assert not imported, f"rejected files imported watched modules: {imported}"
    assert not [p for p in tmp_path.iterdir() if p.name == TOKEN]


# --------------------------------------------------------------------------- trusted=
