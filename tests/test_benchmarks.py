"""The benchmark scripts run and report every row (``--quick``: not timed, numbers
meaningless), and their helpers compute what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_page_aligned_empty_starts_on_a_page(bench_path):
    pytest.importorskip("numpy")
    from _util import page_aligned_empty

    for nbytes in (1, 4096, 3 * 2**20 + 5):
        buf = page_aligned_empty(nbytes)
        assert buf.nbytes == nbytes and buf.ctypes.data % 4096 == 0


def test_overlap_summary_is_across_processes(bench_path):
    from bench_overlap import summary

    s = summary([[3.0, 1.0, 2.0], [10.0, 9.0, 8.0], [4.0, 5.0, 4.5]])
    # first operations 3, 10, 4; per-process medians 2, 9, 4.5
    assert (s["first_min"], s["first_med"], s["first_max"]) == (3.0, 4.0, 10.0)
    assert (s["proc_min"], s["proc_med"], s["proc_max"]) == (2.0, 4.5, 9.0)
    assert s["slow"] == 2  # 9 and 4.5 are over twice 2


def _run(script: str, *args: str, timeout: int = 900) -> str:
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_bench_targets_quick_prints_every_target_and_case(tmp_path):
    for name in ("joblib", "skops", "sklearn"):
        pytest.importorskip(name)
    out = _run("bench_targets.py", "--quick", "--tmpdir", str(tmp_path))
    targets = out.split("## Targets", 1)[1].split("## Cases", 1)[0]
    for row in (
        "deep: dumps ≤ 1.3x pickle",
        "deep: loads ≤ 1.3x pickle",
        "round trip ≤ 2x pickle",
        "Ridge: round trip ≤ 5x pickle",
        "first load in a fresh process after `import sklearn` (Ridge)",
        "dump to a path ≥ 0.9x a raw write + fsync",
        "load ≥ 0.9x a raw read into preallocated memory",
        "peak extra memory of a",
        "TfidfVectorizer",
        "across fresh processes",
    ):
        assert row in targets, row
    assert targets.count("round trip ≤ 2x pickle") == 2  # the small forest and HGB
    for case in ("### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "### 6."):
        assert case in out, case
    assert "quick mode" in out and "- CPU:" in out and "git" in out


@pytest.mark.slow
def test_bench_overlap_quick_prints_every_mode():
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("bench_overlap", BENCH / "bench_overlap.py")
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    out = _run("bench_overlap.py", "--quick")
    for mode in module.MODES:
        assert f"| {mode} |" in out, mode
