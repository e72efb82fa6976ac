"""scikit-learn-intelex estimators round-trip in a fresh process, same outputs and types.

Each estimator with array API support is fitted on numpy and on torch CPU tensors under
``array_api_dispatch=True``; one child process (which sets no configuration at all)
loads every file and computes the outputs again.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import sklearn
from _compare import assert_identical

import devpersist

METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples",
           "kneighbors", "mahalanobis")  # fmt: skip
ATTRIBUTES = {
    "DBSCAN": ("labels_", "components_"),
    "BasicStatistics": ("mean_", "min_", "max_"),
    "IncrementalBasicStatistics": ("mean_", "variance_"),
    "EmpiricalCovariance": ("covariance_", "location_"),
    "IncrementalEmpiricalCovariance": ("covariance_", "location_"),
}


_FOREST = {"n_estimators": 5, "random_state": 0}
#: name: (module, class, params, target: "reg" | "clf" | None); classes are imported by
#: the fixture, after it checks that sklearnex is installed (collection needs no sklearnex)
CASES = {
    "LinearRegression": ("sklearnex.linear_model", "LinearRegression", {}, "reg"),
    "Ridge": ("sklearnex.linear_model", "Ridge", {}, "reg"),
    "LogisticRegression": ("sklearnex.linear_model", "LogisticRegression", {}, "clf"),
    "IncrementalLinearRegression": (
        "sklearnex.linear_model",
        "IncrementalLinearRegression",
        {},
        "reg",
    ),
    "IncrementalRidge": ("sklearnex.linear_model", "IncrementalRidge", {}, "reg"),
    "PCA": ("sklearnex.decomposition", "PCA", {"n_components": 2}, None),
    "KMeans": (
        "sklearnex.cluster",
        "KMeans",
        {"n_clusters": 2, "n_init": 2, "random_state": 0},
        None,
    ),
    "DBSCAN": ("sklearnex.cluster", "DBSCAN", {"eps": 0.3}, None),
    "KNeighborsClassifier": (
        "sklearnex.neighbors",
        "KNeighborsClassifier",
        {"n_neighbors": 3},
        "clf",
    ),
    "KNeighborsRegressor": (
        "sklearnex.neighbors",
        "KNeighborsRegressor",
        {"n_neighbors": 3},
        "reg",
    ),
    "NearestNeighbors": ("sklearnex.neighbors", "NearestNeighbors", {"n_neighbors": 3}, None),
    "LocalOutlierFactor": ("sklearnex.neighbors", "LocalOutlierFactor", {"novelty": True}, None),
    "RandomForestClassifier": ("sklearnex.ensemble", "RandomForestClassifier", _FOREST, "clf"),
    "RandomForestRegressor": ("sklearnex.ensemble", "RandomForestRegressor", _FOREST, "reg"),
    "ExtraTreesClassifier": ("sklearnex.ensemble", "ExtraTreesClassifier", _FOREST, "clf"),
    "ExtraTreesRegressor": ("sklearnex.ensemble", "ExtraTreesRegressor", _FOREST, "reg"),
    "SVC": ("sklearnex.svm", "SVC", {}, "clf"),
    "SVR": ("sklearnex.svm", "SVR", {}, "reg"),
    "NuSVC": ("sklearnex.svm", "NuSVC", {}, "clf"),
    "NuSVR": ("sklearnex.svm", "NuSVR", {}, "reg"),
    "BasicStatistics": ("sklearnex.basic_statistics", "BasicStatistics", {}, None),
    "IncrementalBasicStatistics": (
        "sklearnex.basic_statistics",
        "IncrementalBasicStatistics",
        {},
        None,
    ),
    "EmpiricalCovariance": ("sklearnex.preview.covariance", "EmpiricalCovariance", {}, None),
    "IncrementalEmpiricalCovariance": (
        "sklearnex.covariance",
        "IncrementalEmpiricalCovariance",
        {},
        None,
    ),
}


def outputs(name, est, X):
    """What the test compares: every method's output on X, and the listed attributes."""
    out = {}
    for method in METHODS:
        if hasattr(est, method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[method] = getattr(est, method)(X)
    for attr in ATTRIBUTES.get(name, ()):
        out[attr] = getattr(est, attr)
    return out


# the same function runs here and in the child process
OUTPUTS = (
    f"import warnings\nMETHODS = {METHODS!r}\nATTRIBUTES = {ATTRIBUTES!r}\n"
    + inspect.getsource(outputs)
)

CHILD = """
import sys, devpersist
folder, names = sys.argv[1], sys.argv[2:]
for name in names:
    est = devpersist.load(f"{folder}/{name}.dvp")      # no configuration set here
    X = devpersist.load(f"{folder}/{name}.X.dvp")
    devpersist.dump(outputs(name.split("-")[0], est, X), f"{folder}/{name}.got.dvp")
"""


def _data(backend):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    targets = {"reg": X @ np.arange(4.0), "clf": (X[:, 0] > 0.5).astype(np.float64)}
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return torch.from_numpy(X), {k: torch.from_numpy(v) for k, v in targets.items()}
    return X, targets


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    pytest.importorskip("sklearnex")
    folder = tmp_path_factory.mktemp("sklearnex")
    expected, names = {}, []
    for backend in ("numpy", "torch"):
        X, targets = _data(backend)
        for name, (module, class_name, params, target) in CASES.items():
            cls = getattr(importlib.import_module(module), class_name)
            key = f"{name}-{backend}"
            with sklearn.config_context(array_api_dispatch=backend == "torch"):
                est = cls(**params)
                est.fit(X) if target is None else est.fit(X, targets[target])
                expected[key] = outputs(name, est, X)
                devpersist.dump(est, folder / f"{key}.dvp")
            devpersist.dump(X, folder / f"{key}.X.dvp")
            names.append(key)
    script = OUTPUTS + textwrap.dedent(CHILD)
    result = subprocess.run([sys.executable, "-c", script, str(folder), *names],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, expected


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_in_a_fresh_process(round_trips, name, backend):
    folder, expected = round_trips
    key = f"{name}-{backend}"
    got = devpersist.load(folder / f"{key}.got.dvp")
    assert got.keys() == expected[key].keys() and got
    for what, value in expected[key].items():
        if isinstance(value, tuple):  # kneighbors: (distances, indices)
            assert type(got[what]) is tuple and len(got[what]) == len(value)
            for a, b in zip(value, got[what]):
                assert_identical(a, b, f"{key}.{what}")
        else:
            assert_identical(value, got[what], f"{key}.{what}")


def test_onedal_objects_are_allowlisted_one_by_one():
    from devpersist import _safety

    onedal_names = [n for n in _safety.EXACT if n[0].startswith("onedal")]
    assert onedal_names and all("*" not in n[1] and n[1] for n in onedal_names)
    assert not any(rule.startswith("onedal") for rule in _safety.RULE_PACKAGES)
