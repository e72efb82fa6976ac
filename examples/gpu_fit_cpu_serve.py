"""Fit on an accelerator, serve on a CPU host without torch.

Fits a Ridge with scikit-learn's array API dispatch on torch tensors (CUDA when there is
one, else the CPU), saves it, then loads it in a fresh process where importing torch is
impossible, as a plain numpy model, and checks the predictions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy / scikit-learn are imported

SERVE = """
import sys, importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed on this serving host")
sys.meta_path.insert(0, NoTorch())
import numpy as np, devpersist
model = devpersist.load(sys.argv[1], namespace="numpy")
np.save(sys.argv[3], model.predict(np.load(sys.argv[2])))
print(f"served {type(model).__name__} with numpy only; torch imported: {'torch' in sys.modules}")
"""


def main() -> int:
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to demonstrate")
        return 0
    import numpy as np
    import sklearn
    from sklearn.linear_model import Ridge

    import devpersist

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(500, 20, generator=gen, dtype=torch.float64).to(device)
    y = X @ torch.randn(20, generator=gen, dtype=torch.float64).to(device)
    with sklearn.config_context(array_api_dispatch=True):
        model = Ridge(solver="svd").fit(X, y)
        expected = model.predict(X).cpu().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path, x_path, out = (Path(tmp) / n for n in ("ridge.dvp", "X.npy", "pred.npy"))
        devpersist.dump(model, path)  # after the block, as people do
        print(
            f"fitted on {device}; saved arrays on",
            {a["device"] for a in devpersist.info(path)["arrays"]},
        )
        np.save(x_path, X.cpu().numpy())
        subprocess.run([sys.executable, "-c", SERVE, path, x_path, out], check=True)
        got = np.load(out)
    ok = np.allclose(got, expected, rtol=1e-10, atol=1e-10)
    print("predictions match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
