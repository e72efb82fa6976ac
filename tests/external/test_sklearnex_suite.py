"""scikit-learn-intelex's own pickling tests, run unchanged with devpersist as pickle.

Sources: the tests of the installed scikit-learn-intelex that call ``pickle.dumps`` /
``pickle.loads`` (``MODULES`` below: the incremental estimators' ``..._pickle`` tests,
``test_pickle`` of neighbors, SVM and linear models, and ``test_predict_after_fallback``
of ``sklearnex/svm``). They run in a child pytest with the ``_swap_pickle`` plugin,
which makes ``pickle.dumps``/``loads`` call ``devpersist.dumps``/``loads`` (default, safe
options) during each test and counts the calls; a test that passes without calling
them does not count as a pass. sklearnex's and onedal's tests run in two sessions
because some of their test files share a basename.

Not applicable: ``test_pickle_torch_xpu`` (needs an Intel XPU; skipped by sklearnex
itself), the ``linear``/``scale`` cases of ``test_predict_after_fallback`` (skipped by
sklearnex itself), and the dpnp/SYCL-queue parametrizations (no SYCL device here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULES = {
    "sklearnex": [
        "sklearnex.basic_statistics.tests.test_incremental_basic_statistics",
        "sklearnex.covariance.tests.test_incremental_covariance",
        "sklearnex.preview.decomposition.tests.test_incremental_pca",
        "sklearnex.linear_model.tests.test_incremental_linear",
        "sklearnex.linear_model.tests.test_incremental_ridge",
        "sklearnex.neighbors.tests.test_neighbors",
        "sklearnex.svm.tests.test_svm",
    ],
    "onedal": [
        "onedal.basic_statistics.tests.test_incremental_basic_statistics",
        "onedal.covariance.tests.test_incremental_covariance",
        "onedal.decomposition.tests.test_incremental_pca",
        "onedal.linear_model.tests.test_incremental_linear_regression",
        "onedal.linear_model.tests.test_incremental_ridge_regression",
        "onedal.linear_model.tests.test_linear_regression",
        "onedal.linear_model.tests.test_logistic_regression",
        "onedal.linear_model.tests.test_ridge",
        "onedal.svm.tests.test_svc",
        "onedal.svm.tests.test_svr",
        "onedal.svm.tests.test_nusvc",
        "onedal.svm.tests.test_nusvr",
    ],
}
SELECT = "pickle or predict_after_fallback"
HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _run(group: str, tmp: Path) -> dict[str, dict[str, object]]:
    """Run one group in a child pytest; {module::test: outcome and devpersist calls}."""
    report = tmp / f"{group}.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "SCIPY_ARRAY_API": "1",  # sklearnex's array API cases need it before scipy loads
        "DEVPERSIST_SWAP_REPORT": str(report),
    }
    command = [sys.executable, "-m", "pytest", "-p", "_swap_pickle", "-p", "no:cacheprovider",
               "-q", "-k", SELECT, "--pyargs", *MODULES[group]]  # fmt: skip
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, dict[str, object]] = json.loads(report.read_text())
    assert results, done.stdout[-3000:]
    return results


@pytest.mark.parametrize("group", list(MODULES))
def test_sklearnex_pickling_tests(group, tmp_path):
    pytest.importorskip("sklearnex")
    results = _run(group, tmp_path)
    outcomes = {name: entry.get("outcome", "not run") for name, entry in results.items()}
    failed = {name: o for name, o in outcomes.items() if o not in ("passed", "skipped")}
    assert not failed, "\n".join(f"{name}: {outcome}" for name, outcome in failed.items())
    passed = [name for name, outcome in outcomes.items() if outcome == "passed"]
    assert passed, "no test of the group ran"
    silent = [name for name in passed if not results[name]["dumps"]]
    assert not silent, f"passed without calling devpersist.dumps: {silent}"
