"""The load path's shortcuts keep its verdicts; a load imports only what the file needs (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import devpersist


def test_plain_arrays_saved_under_sklearn_load_without_importing_it(tmp_path):
    """A dict of numpy arrays saved in a process that had imported scikit-learn records
    its configuration; loading it must not import scikit-learn to plan that configuration
    (nothing in the file is an estimator)."""
    import sklearn  # noqa: F401  (so that the file records a configuration)

    path = tmp_path / "arrays.dp"
    devpersist.dump({"a": np.arange(3.0), "b": np.ones((2, 2), np.int32)}, path)
    assert devpersist.info(path).get("config")  # the precondition: a configuration recorded
    script = textwrap.dedent(
        """
        import json, sys
        import devpersist
        out = devpersist.load(sys.argv[1])
        print(json.dumps({"sklearn": "sklearn" in sys.modules,
                          "a": out["a"].tolist(), "b": out["b"].tolist(),
                          "dtypes": [str(out["a"].dtype), str(out["b"].dtype)]}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=120, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {
        "sklearn": False, "a": [0.0, 1.0, 2.0], "b": [[1, 1], [1, 1]],
        "dtypes": ["float64", "int32"]}  # fmt: skip


def test_dtype_identity_cache_returns_what_parsing_gives():
    """``dtype_from_descr`` remembers a structured descriptor's list by identity (a
    version 2 table shares one per distinct dtype): the remembered answer is the parsed
    one, an equal new list parses to the same dtype, and a refused list is never
    remembered (it raises every time)."""
    from devpersist import FormatError
    from devpersist.arrays import dtype_from_descr

    descr = [["left", "<i8"], ["value", "<f8", [2]]]
    expected = np.dtype([("left", "<i8"), ("value", "<f8", (2,))])
    assert dtype_from_descr(descr) == expected
    assert dtype_from_descr(descr) == expected  # the remembered one
    assert dtype_from_descr([["left", "<i8"], ["value", "<f8", [2]]]) == expected
    bad = [["o", "|O"]]
    for _ in range(2):
        with pytest.raises(FormatError):
            dtype_from_descr(bad)


def test_forest_round_trip_with_shared_structured_dtypes():
    """Hundreds of node arrays share one dtype list in the table: each loads bit for bit."""
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.RandomState(0).normal(size=(60, 3))
    model = RandomForestClassifier(5, random_state=0).fit(X, X[:, 0] > 0)
    back = devpersist.loads(devpersist.dumps(model))
    for tree, got in zip(model.estimators_, back.estimators_):
        for name in ("nodes", "values"):
            a, b = tree.tree_.__getstate__()[name], got.tree_.__getstate__()[name]
            assert type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
