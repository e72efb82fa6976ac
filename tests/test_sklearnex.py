"""scikit-learn-intelex estimators round-trip in a fresh process, same outputs and types.

Each estimator with array API support is fitted on numpy and on torch CPU tensors under
``array_api_dispatch=True``; one child process (which sets no configuration at all)
loads every file and computes the outputs again.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _compare import assert_identical

import devpersist

sklearnex = pytest.importorskip("sklearnex")
sklearn = pytest.importorskip("sklearn")

METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples",
           "kneighbors", "mahalanobis")  # fmt: skip
ATTRIBUTES = {
    "DBSCAN": ("labels_", "components_"),
    "BasicStatistics": ("mean_", "min_", "max_"),
    "IncrementalBasicStatistics": ("mean_", "variance_"),
    "EmpiricalCovariance": ("covariance_", "location_"),
    "IncrementalEmpiricalCovariance": ("covariance_", "location_"),
}


def _cases():
    from sklearnex import basic_statistics as bs
    from sklearnex import cluster, covariance, ensemble, neighbors, svm
    from sklearnex import decomposition as dec
    from sklearnex import linear_model as lm
    from sklearnex.preview.covariance import EmpiricalCovariance

    forest = {"n_estimators": 5, "random_state": 0}
    return {  # name: (class, params, target: "reg" | "clf" | None)
        "LinearRegression": (lm.LinearRegression, {}, "reg"),
        "Ridge": (lm.Ridge, {}, "reg"),
        "LogisticRegression": (lm.LogisticRegression, {}, "clf"),
        "IncrementalLinearRegression": (lm.IncrementalLinearRegression, {}, "reg"),
        "IncrementalRidge": (lm.IncrementalRidge, {}, "reg"),
        "PCA": (dec.PCA, {"n_components": 2}, None),
        "KMeans": (cluster.KMeans, {"n_clusters": 2, "n_init": 2, "random_state": 0}, None),
        "DBSCAN": (cluster.DBSCAN, {"eps": 0.3}, None),
        "KNeighborsClassifier": (neighbors.KNeighborsClassifier, {"n_neighbors": 3}, "clf"),
        "KNeighborsRegressor": (neighbors.KNeighborsRegressor, {"n_neighbors": 3}, "reg"),
        "NearestNeighbors": (neighbors.NearestNeighbors, {"n_neighbors": 3}, None),
        "LocalOutlierFactor": (neighbors.LocalOutlierFactor, {"novelty": True}, None),
        "RandomForestClassifier": (ensemble.RandomForestClassifier, forest, "clf"),
        "RandomForestRegressor": (ensemble.RandomForestRegressor, forest, "reg"),
        "ExtraTreesClassifier": (ensemble.ExtraTreesClassifier, forest, "clf"),
        "ExtraTreesRegressor": (ensemble.ExtraTreesRegressor, forest, "reg"),
        "SVC": (svm.SVC, {}, "clf"),
        "SVR": (svm.SVR, {}, "reg"),
        "NuSVC": (svm.NuSVC, {}, "clf"),
        "NuSVR": (svm.NuSVR, {}, "reg"),
        "BasicStatistics": (bs.BasicStatistics, {}, None),
        "IncrementalBasicStatistics": (bs.IncrementalBasicStatistics, {}, None),
        "EmpiricalCovariance": (EmpiricalCovariance, {}, None),
        "IncrementalEmpiricalCovariance": (covariance.IncrementalEmpiricalCovariance, {}, None),
    }


OUTPUTS = """
import warnings
def outputs(name, est, X):
    out = {}
    for method in %r:
        if hasattr(est, method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[method] = getattr(est, method)(X)
    for attr in %r.get(name, ()):
        out[attr] = getattr(est, attr)
    return out
""" % (METHODS, ATTRIBUTES)
exec(OUTPUTS)  # the same function runs here and in the child process

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
    folder = tmp_path_factory.mktemp("sklearnex")
    expected, names = {}, []
    for backend in ("numpy", "torch"):
        X, targets = _data(backend)
        for name, (cls, params, target) in _cases().items():
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
@pytest.mark.parametrize("name", list(_cases()))
def test_round_trip_in_a_fresh_process(round_trips, name, backend):
    folder, expected = round_trips
    key = f"{name}-{backend}"
    got = devpersist.load(folder / f"{key}.got.dvp")
    assert got.keys() == expected[key].keys() and got
    for what, value in expected[key].items():
        if isinstance(value, tuple):  # kneighbors: (distances, indices)
            for a, b in zip(value, got[what]):
                assert_identical(a, b, f"{key}.{what}")
        else:
            assert_identical(value, got[what], f"{key}.{what}")


def test_onedal_objects_are_allowlisted_one_by_one():
    from devpersist import _safety

    onedal_names = [n for n in _safety.EXACT if n[0].startswith("onedal")]
    assert onedal_names and all("*" not in n[1] and n[1] for n in onedal_names)
    assert not any(rule.startswith("onedal") for rule in _safety.RULE_PACKAGES)
