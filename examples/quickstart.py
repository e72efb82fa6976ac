"""Fit a model, save it with devpersist, load it in a fresh process, compare predictions."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import devpersist

LOAD_AND_PREDICT = """
import sys, numpy as np, devpersist
model = devpersist.load(sys.argv[1])          # safe by default: allowlisted types only
X = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict_proba(X))
"""


def main() -> int:
    X, y = make_classification(n_samples=500, n_features=20, random_state=0)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=50, random_state=0))
    model.fit(X, y)
    expected = model.predict_proba(X)

    with tempfile.TemporaryDirectory() as tmp:
        path, x_path, out_path = (Path(tmp) / n for n in ("model.dvp", "X.npy", "pred.npy"))
        devpersist.dump(model, path)
        np.save(x_path, X)
        meta = devpersist.info(path)
        print(
            f"saved {meta['object']['type']} to {path.name}: {path.stat().st_size:,} bytes, "
            f"{len(meta['arrays'])} arrays, format v{meta['format_version']}"
        )
        subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, path, x_path, out_path], check=True)
        got = np.load(out_path)

    same = got.dtype == expected.dtype and np.array_equal(got, expected)
    print(
        "loaded in a fresh process: predictions match bit for bit"
        if same
        else "MISMATCH: predictions differ after loading"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
