"""The user's journey, generated from the estimators' own tags (used by test_journey.py).

Which estimators: every instance of scikit-learn's test instance generator whose tags say
``array_api_support`` (with the parameters scikit-learn's own array-API check uses),
the estimators whose support depends on parameters, set to those parameters, estimators
scikit-learn documents as working although their tag says no (tried, kept when they fit),
every sklearnex estimator whose tags say ``array_api_support`` or ``onedal_array_api``,
and Pipeline, FeatureUnion and the searches. Nothing here is a hand-picked list of what
is known to pass: a case that cannot even be fitted on a backend is reported as such.

The serving side (``_journey_serve.py``) runs as a script in a fresh process: scikit-learn
is imported before devpersist, as a server would, and every prediction is made from a
worker thread (scikit-learn's configuration is thread-local). It builds its inputs and
describes its outputs with :func:`to_backend` and :func:`describe` from here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")
#: The host device of each backend, and the device a mapped load sends the saved one to.
HOST = {"torch": "cpu", "array_api_strict": "CPU_DEVICE"}
SAVED = {"torch": "cpu", "array_api_strict": "device1"}
MAPPED = {"torch": "cpu", "array_api_strict": "device2"}


def _tagged_sklearn() -> Iterator[tuple[str, Any]]:
    from sklearn.utils import get_tags
    from sklearn.utils._test_common.instance_generator import (
        _tested_estimators,
        _yield_instances_for_check,
    )
    from sklearn.utils.estimator_checks import check_array_api_input

    for est in _tested_estimators():
        if not get_tags(est).array_api_support:
            continue
        for i, inst in enumerate(_yield_instances_for_check(check_array_api_input, est)):
            yield f"{type(inst).__name__}-{i}", inst


def _parameter_dependent() -> Iterator[tuple[str, Any]]:
    """Estimators whose tag is true only for some parameters (scikit-learn's
    ``doc/modules/array_api.rst``), with those parameters; the tag is checked."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, PoissonRegressor
    from sklearn.mixture import GaussianMixture
    from sklearn.utils import get_tags

    for name, est in [
        ("GaussianMixture-random", GaussianMixture(2, init_params="random", random_state=0)),
        ("CalibratedClassifierCV-temperature",
         CalibratedClassifierCV(LogisticRegression(), method="temperature", cv=3)),
        ("PCA-full", PCA(2, svd_solver="full")),
        ("PCA-randomized-power", PCA(2, svd_solver="randomized", power_iteration_normalizer="QR",
                                     random_state=0)),
        ("LogisticRegression-lbfgs", LogisticRegression(solver="lbfgs")),
        ("PoissonRegressor-lbfgs", PoissonRegressor(solver="lbfgs")),
    ]:  # fmt: skip
        if get_tags(est).array_api_support:
            yield name, est


def _documented_untagged() -> Iterator[tuple[str, Any]]:
    """Pipeline (its tag is always False), and estimators documented to work on
    array-API inputs although their tag says False: tried like the others."""
    from sklearn.decomposition import PCA
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.linear_model import Ridge, RidgeClassifier
    from sklearn.model_selection import HalvingGridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler

    yield "Pipeline", make_pipeline(StandardScaler(), PCA(2, svd_solver="full"), Ridge())
    yield "MaxAbsScaler", MaxAbsScaler()
    yield "RidgeClassifier", RidgeClassifier(solver="svd")
    yield (
        "HalvingGridSearchCV",
        HalvingGridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=3, random_state=0),
    )


def _sklearnex() -> Iterator[tuple[str, Any]]:
    try:
        import sklearnex
    except ImportError:
        return
    from sklearn.base import BaseEstimator
    from sklearn.utils import get_tags

    classes: dict[str, type] = {}
    skip = (".tests", "spmd", "preview", "__main__", "glob", "_device_offload", "dispatcher")
    for info in pkgutil.walk_packages(sklearnex.__path__, "sklearnex."):
        if any(part in info.name for part in skip):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # optional parts (SPMD, GPU builds) that cannot load here
            continue
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("sklearnex")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
            ):
                classes[f"{cls.__module__}.{name}"] = cls
    fast = {"n_estimators": 5, "max_iter": 50}
    for _, cls in sorted(classes.items()):
        try:
            params = inspect.signature(cls).parameters
            est = cls(**{k: v for k, v in fast.items() if k in params})
            tags = get_tags(est)
        except Exception:  # abstract bases that need arguments
            continue
        if tags.array_api_support or getattr(tags, "onedal_array_api", False):
            yield f"sklearnex.{cls.__name__}", est


def estimators() -> list[tuple[str, Any]]:
    """Every (name, unfitted estimator) of the journey, named uniquely."""
    found: dict[str, Any] = {}
    for source in (_tagged_sklearn, _parameter_dependent, _documented_untagged, _sklearnex):
        for name, est in source():
            found.setdefault(name, est)
    return sorted(found.items())


def data_for(est: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Training data (X, y or None) and what the methods take ("X", "K" or "y")."""
    from sklearn.base import is_classifier, is_regressor

    rng = np.random.default_rng(0)
    X = rng.random((48, 4))
    name = type(est).__name__
    if name == "KernelCenterer":
        return X @ X.T, None, "X"
    if name == "LabelEncoder":
        return np.floor(5 * X[:, 0]), None, "y"
    if is_classifier(est):
        return X, (X[:, 0] + 0.2 * rng.random(48) > 0.6).astype(np.float64), "X"
    if is_regressor(est) or getattr(est, "_estimator_type", None) == "regressor":
        if "Poisson" in name:
            return X, np.floor(3 * X[:, 0] + X[:, 1]), "X"
        return X, X @ np.arange(1.0, 5.0) + 0.1 * rng.random(48), "X"
    return X, None, "X"


def to_backend(array: np.ndarray, backend: str, device: str | None = None) -> Any:
    if backend == "torch":
        import torch

        return torch.asarray(array, device=device or SAVED[backend])
    import array_api_strict as xp

    return xp.asarray(array, device=xp.Device(device or SAVED[backend]))


def describe(value: Any) -> dict[str, Any]:
    """Type, namespace, device and dtype of an output, and its values as numpy."""
    module = type(value).__module__.partition(".")[0]
    if module == "torch":
        device, host = str(value.device), value.detach().cpu().numpy()
    elif module == "array_api_strict":
        import array_api_strict as xp

        device, host = value.device._device, np.asarray(value.to_device(xp.Device("CPU_DEVICE")))
    else:
        device, host = "cpu", np.asarray(value)
    return {
        "type": f"{type(value).__module__}.{type(value).__qualname__}",
        "namespace": module,
        "device": device,
        "dtype": str(host.dtype),
        "values": host,
    }


def is_array(value: Any) -> bool:
    """A torch tensor, an array-api-strict array or a plain numpy array."""
    tp = type(value)
    module = str(getattr(tp, "__module__", "") or "").partition(".")[0]
    if module == "torch":
        return tp.__name__ in ("Tensor", "Parameter")
    if module == "array_api_strict":
        return tp.__name__ == "Array"
    return tp is np.ndarray


def outputs(est: Any, X: Any, methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    """What ``est`` computes from ``X``; for an estimator with none of ``methods``
    (DBSCAN, BasicStatistics...), its public fitted arrays (``attr:name``)."""
    found = {}
    for method in methods:
        if hasattr(est, method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[method] = getattr(est, method)(X)
    if not found:
        for name in dir(est):
            if name.endswith("_") and not name.startswith("_"):
                try:
                    value = getattr(est, name)
                except Exception:  # properties of unfitted parts
                    continue
                if is_array(value):
                    found[f"attr:{name}"] = value
    return found


def _to_numpy(value: Any) -> Any:
    return describe(value)["values"] if is_array(value) else value


def deep_numpy(obj: Any, seen: dict[int, Any] | None = None) -> Any:
    """A copy of ``obj`` whose arrays are all numpy, found in every object's state (what
    ``move_estimator_to`` does for estimators only); None where something cannot be
    copied."""
    import copy

    seen = {} if seen is None else seen
    if id(obj) in seen:
        return seen[id(obj)]
    if is_array(obj):
        seen[id(obj)] = out = _to_numpy(obj)
        return out
    if isinstance(obj, list):
        seen[id(obj)] = out = []
        out.extend(deep_numpy(v, seen) for v in obj)
        return out
    if isinstance(obj, tuple):
        return tuple(deep_numpy(v, seen) for v in obj)
    if isinstance(obj, dict):
        seen[id(obj)] = out = {}
        out.update({k: deep_numpy(v, seen) for k, v in obj.items()})
        return out
    state = getattr(obj, "__dict__", None)
    if not isinstance(state, dict) or isinstance(obj, type) or callable(obj):
        return obj
    seen[id(obj)] = out = copy.copy(obj)
    for key, value in state.items():
        setattr(out, key, deep_numpy(value, seen))
    return out


def numpy_reference(est: Any, X: np.ndarray, methods: list[str]) -> dict[str, Any] | None:
    """The outputs of the model converted to numpy by scikit-learn's own
    ``move_estimator_to``, or where that fails or leaves other arrays behind
    (sub-objects that are not estimators, such as CalibratedClassifierCV's), by
    :func:`deep_numpy`; None where neither gives numpy outputs (oneDAL estimators keep
    a converter to the training input's type)."""
    from sklearn.utils._array_api import move_estimator_to

    for convert in (lambda e: move_estimator_to(e, np, "cpu"), deep_numpy):
        got = _numpy_outputs(convert, est, X, methods)
        if got is not None:
            return got
    return None


def _numpy_outputs(convert: Any, est: Any, X: np.ndarray, methods: list[str]) -> Any:
    import sklearn

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            moved = convert(est)
            with sklearn.config_context(array_api_dispatch=False):
                got = {}
                for method in methods:
                    if method.startswith("attr:"):
                        got[method] = getattr(moved, method[5:])
                    else:
                        got[method] = getattr(moved, method)(X)
    except Exception:
        return None
    if not all(type(v) is np.ndarray for v in got.values()):
        return None
    return got


def holds_device_arrays(obj: Any, seen: set[int] | None = None) -> bool:
    """Does the fitted state hold any torch or array-api-strict array?"""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if is_array(obj):
        return type(obj) is not np.ndarray
    if isinstance(obj, dict):
        return any(holds_device_arrays(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds_device_arrays(v, seen) for v in obj)
    if isinstance(obj, (type, types.ModuleType)):  # namespace modules, classes
        return False
    state = getattr(obj, "__dict__", None)
    return isinstance(state, dict) and any(holds_device_arrays(v, seen) for v in state.values())


def fit(est: Any, backend: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Fit on ``backend`` under array API dispatch; the outputs to compare, described.

    The outputs are computed inside ``config_context(array_api_dispatch=True)`` when the
    fitted state holds device arrays (the model needs dispatch, whatever the caller's
    configuration). A model without any (``Binarizer``, ``Normalizer``: nothing fitted
    but counts) depends on the caller's configuration alone, so its outputs are
    computed the way the serving thread calls it, outside any context, on the input of
    each load mode (its device), and returned as the third item,
    ``{mode: {method: output}}``; a method that raises there must raise the same way
    after loading.
    """
    import sklearn

    X, y, takes = data_for(est)
    Xb = to_backend(X, backend)
    yb = None if y is None else to_backend(y, backend)
    with warnings.catch_warnings(), sklearn.config_context(array_api_dispatch=True):
        warnings.simplefilter("ignore")
        est.fit(Xb) if yb is None else est.fit(Xb, yb)
        got: dict[str, Any] = outputs(est, Xb)
    per_mode: dict[str, Any] = {}
    if not holds_device_arrays(est):
        devices = {"default": SAVED[backend], "host": HOST[backend], "mapped": MAPPED[backend]}
        for mode, device in devices.items():
            per_mode[mode] = {}
            for method in got:
                try:
                    value = outputs(est, to_backend(X, backend, device), (method,))[method]
                    per_mode[mode][method] = describe(value)
                except Exception as exc:
                    per_mode[mode][method] = {"error": type(exc).__name__}
    return est, {m: describe(v) for m, v in got.items()}, per_mode
