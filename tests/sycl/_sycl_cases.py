"""The sklearnex estimators the SYCL suite fits, generated from sklearnex's own tags.

Every public estimator class in the installed sklearnex whose tags say
``onedal_array_api`` (the tag sklearnex's ``enable_array_api`` decorator sets) is fitted on
dpnp arrays under ``array_api_dispatch=True``; none is picked by hand. Used both by the
tests and by the serving child process (``_sycl_serve.py``), so this module imports
nothing at import time.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Methods whose outputs are compared (the ones the estimator has).
METHODS = (
    "predict",
    "predict_proba",
    "decision_function",
    "transform",
    "score_samples",
    "kneighbors",
)
#: The variables that make the OpenCL CPU device visible (set by conftest.py; tests
#: remove them to play a host without any SYCL device).
OPENCL_VARIABLES = ("OCL_ICD_FILENAMES", "OCL_ICD_VENDORS")
#: sklearnex subpackages that hold no estimators a user fits on one machine.
_SKIP = (".tests", ".spmd", "__main__", "glob", "conftest")


def array_api_estimators() -> dict[str, type]:
    """``{name: class}`` of every sklearnex estimator tagged ``onedal_array_api``."""
    import sklearnex
    from sklearn.base import BaseEstimator
    from sklearn.utils import get_tags

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(sklearnex.__path__, "sklearnex."):
        if any(part in info.name for part in _SKIP):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional parts (daal4py extras) this install lacks
            continue
        for name, cls in vars(module).items():
            if (
                name.startswith("_")
                or not inspect.isclass(cls)
                or not issubclass(cls, BaseEstimator)
                or not cls.__module__.startswith("sklearnex.")
                or inspect.isabstract(cls)
            ):
                continue
            try:
                tags = get_tags(cls())
            except TypeError:  # abstract bases that need arguments (ForestClassifier)
                continue
            if getattr(tags, "onedal_array_api", False):
                found[name] = cls
    return dict(sorted(found.items()))


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, a regression target and a two-class target (float64, like the estimators'
    own tests)."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    return X, X @ np.arange(1.0, 5.0), (X[:, 0] > 0.5).astype(np.float64)


def target_for(est: Any, reg: np.ndarray, clf: np.ndarray) -> np.ndarray:
    from sklearn.base import is_classifier

    return clf if is_classifier(est) else reg


def outputs(est: Any, X: Any) -> dict[str, Any]:
    """Every comparable output: each method's result (a tuple's parts as ``name.i``) and
    each array in the estimator's own state (``attr:name``), in the order computed."""
    out: dict[str, Any] = {}
    for method in METHODS:
        if not hasattr(est, method):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = getattr(est, method)(X)
        if isinstance(value, tuple):
            for index, part in enumerate(value):
                out[f"{method}.{index}"] = part
        else:
            out[method] = value
    raw = getattr(est, "__wrapped__", est)
    for name, value in sorted(vars(raw).items()):
        if hasattr(value, "__array_namespace__") or isinstance(value, np.ndarray):
            out[f"attr:{name}"] = value
    return out


def describe(value: Any) -> dict[str, Any]:
    """What must match besides the values: type, dtype, shape, SYCL device, USM type."""
    device = getattr(value, "sycl_device", None)
    return {
        "type": f"{type(value).__module__}.{type(value).__qualname__}",
        "dtype": str(value.dtype),
        "shape": list(value.shape),
        "device": None if device is None else str(device.filter_string),
        "usm_type": getattr(value, "usm_type", None),
    }


def host_values(value: Any) -> np.ndarray:
    """The values as a numpy array (dpnp arrays copied to the host)."""
    if hasattr(value, "sycl_device"):
        import dpnp

        return np.asarray(dpnp.asnumpy(value))
    return np.asarray(value)


def serve(
    folder: Path,
    name: str,
    files: dict[str, str],
    loads: dict[str, dict[str, Any]],
    library: str,
    block: bool = False,
    keep_sycl: bool = True,
    scipy_array_api: bool | None = None,
) -> dict[str, Any]:
    """Load ``files`` in one fresh serving process (``_sycl_serve.py``) with each of the
    load options in ``loads`` (``{mode: options}``), predicting on ``folder/X.npy`` as
    ``library`` arrays; ``block``: dpnp and dpctl cannot be imported; ``keep_sycl=False``:
    no SYCL device at all.

    ``SCIPY_ARRAY_API=1`` is set before the process starts for dpnp input (array-API
    dispatch needs it then) and removed otherwise, unless ``scipy_array_api`` says. Returns the process's report:
    ``results[mode][file name]``, and ``dir``, the folder of its ``MODE-NAME.npz`` output
    values.
    """
    job_dir = folder / f"serve-{name}"
    job_dir.mkdir()
    job = {
        "files": files,
        "loads": loads,
        "input": library,
        "block": block,
        "X": str(folder / "X.npy"),
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    if (library == "dpnp") if scipy_array_api is None else scipy_array_api:
        env["SCIPY_ARRAY_API"] = "1"
    if not keep_sycl:
        for variable in OPENCL_VARIABLES:
            env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "_sycl_serve.py"), str(job_dir / "job.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"the serving process failed:\n{done.stderr[-4000:]}")
    report: dict[str, Any] = json.loads((job_dir / "RESULT.json").read_text())
    report["dir"] = job_dir
    return report
