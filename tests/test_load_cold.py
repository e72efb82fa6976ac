"""A load imports only what the file's objects need (the cold-start part of issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

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
