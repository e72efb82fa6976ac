"""Convert a pickle you trust into a devpersist file, then inspect and verify it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_regression
from sklearn.ensemble import GradientBoostingRegressor

import devpersist


def main() -> int:
    X, y = make_regression(n_samples=300, n_features=8, random_state=0)
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "model.pkl", Path(tmp) / "model.dvp"
        old.write_bytes(pickle.dumps(model))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            meta = devpersist.convert(old, new, compress="zstd")
        print("warning:", caught[0].message)
        print(f"converted: {meta['object']['type']}, {len(meta['arrays'])} arrays, "
              f"{old.stat().st_size:,} -> {new.stat().st_size:,} bytes")  # fmt: skip
        for command in (["info", str(new)], ["verify", str(new)]):
            subprocess.run([sys.executable, "-m", "devpersist", *command], check=True)
        same = np.array_equal(devpersist.load(new).predict(X), model.predict(X))
    print("predictions match" if same else "MISMATCH")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
