"""Array-API-capable scikit-learn estimators fitted on torch tensors and on array-api-strict
``device1``: dump, then load to the original device, to the host, and as numpy.

The same tests run on CUDA (marked ``gpu``; they skip without a CUDA device). They have
not been run on a GPU yet: docs/benchmarks.md ("Device benchmark: pending") says how.
"""

from __future__ import annotations

import contextlib
import warnings

import array_api_strict as xps
import numpy as np
import pytest
import sklearn

import devpersist


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


BACKENDS = [
    "torch-cpu",
    "array_api_strict",
    pytest.param(
        "torch-cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not _cuda_available(), reason="needs CUDA")],
    ),
]
HOST = {"torch-cpu": "cpu", "torch-cuda": "cpu", "array_api_strict": "CPU_DEVICE"}


def _to_backend(array: np.ndarray, backend: str):
    if backend.startswith("torch"):
        torch = pytest.importorskip("torch")
        return torch.asarray(array, device="cuda" if backend == "torch-cuda" else "cpu")
    return xps.asarray(array, device=xps.Device("device1"))


def _to_host(value, backend: str):
    """The same values on the backend's host device (still the backend's library)."""
    if backend.startswith("torch"):
        return value.cpu()
    return xps.asarray(
        np.asarray(value.to_device(xps.Device("CPU_DEVICE"))), device=xps.Device("CPU_DEVICE")
    )


def _device(value) -> str:
    device = value.device
    return getattr(device, "_device", None) or str(device)  # array_api_strict.Device has no str


def _numpy(value):
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    if type(value).__module__.startswith("array_api_strict"):
        return np.asarray(value.to_device(xps.Device("CPU_DEVICE")))
    return np.asarray(value)


def _halving():
    from sklearn import model_selection
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401

    return model_selection


def _cases():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import (
        LogisticRegression,
        PoissonRegressor,
        Ridge,
        RidgeClassifier,
        RidgeClassifierCV,
        RidgeCV,
    )  # fmt: skip
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import (
        Binarizer,
        KernelCenterer,
        LabelEncoder,
        MaxAbsScaler,
        MinMaxScaler,
        Normalizer,
        PolynomialFeatures,
        StandardScaler,
    )  # fmt: skip

    return {  # name: (factory, target kind)
        "PCA": (lambda: PCA(n_components=2, svd_solver="full"), None),
        "Ridge": (lambda: Ridge(solver="svd"), "reg"),
        "RidgeCV": (lambda: RidgeCV(alphas=[0.1, 1.0]), "reg"),
        "RidgeClassifier": (lambda: RidgeClassifier(solver="svd"), "clf"),
        "RidgeClassifierCV": (lambda: RidgeClassifierCV(alphas=[0.1, 1.0]), "clf"),
        "LinearDiscriminantAnalysis": (LinearDiscriminantAnalysis, "clf"),
        "LogisticRegression": (LogisticRegression, "clf"),
        "PoissonRegressor": (PoissonRegressor, "count"),
        "GaussianNB": (GaussianNB, "clf"),
        "GaussianMixture": (lambda: GaussianMixture(2, init_params="random", random_state=0), None),
        "StandardScaler": (StandardScaler, None),
        "MinMaxScaler": (MinMaxScaler, None),
        "MaxAbsScaler": (MaxAbsScaler, None),
        "Normalizer": (Normalizer, None),
        "Binarizer": (lambda: Binarizer(threshold=0.5), None),
        "KernelCenterer": (KernelCenterer, "kernel"),
        "PolynomialFeatures": (PolynomialFeatures, None),
        "Nystroem": (lambda: Nystroem(n_components=10, random_state=0), None),
        "Pipeline": (
            lambda: make_pipeline(StandardScaler(), PCA(2, svd_solver="full"), Ridge(solver="svd")),
            "reg",
        ),
        "FeatureUnion": (
            lambda: FeatureUnion([("s", StandardScaler()), ("p", PCA(2, svd_solver="full"))]),
            None,
        ),
        "GridSearchCV": (
            lambda: GridSearchCV(Ridge(solver="svd"), {"alpha": [0.1, 1.0]}, cv=3),
            "reg",
        ),
        "RandomizedSearchCV": (
            lambda: RandomizedSearchCV(
                Ridge(solver="svd"), {"alpha": [0.1, 1.0, 3.0]}, n_iter=2, cv=3, random_state=0
            ),
            "reg",
        ),
        "CalibratedClassifierCV": (
            lambda: CalibratedClassifierCV(LogisticRegression(), method="temperature", cv=3),
            "clf",
        ),
        "HalvingGridSearchCV": (
            lambda: _halving().HalvingGridSearchCV(
                Ridge(solver="svd"), {"alpha": [0.1, 1.0]}, cv=3, random_state=0
            ),
            "reg",
        ),
        "HalvingRandomSearchCV": (
            lambda: _halving().HalvingRandomSearchCV(
                Ridge(solver="svd"), {"alpha": [0.1, 1.0, 3.0]}, cv=3, random_state=0
            ),
            "reg",
        ),
        "LabelEncoder": (LabelEncoder, "labels"),
    }


#: (estimator, backend) pairs scikit-learn itself cannot fit, with the error it raises:
#: the test checks that it still does (an entry to remove when scikit-learn fixes it).
KNOWN_LIMITS = {
    # temperature scaling calls ``.reshape``, which the array API has as a function only
    ("CalibratedClassifierCV", "array_api_strict"): (AttributeError, "reshape"),
}

METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")


def _outputs(est, X):
    out = {}
    for method in METHODS:
        if hasattr(est, method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[method] = getattr(est, method)(X)
    return out


def _data(kind):
    rng = np.random.default_rng(0)
    X = rng.random((48, 4))
    y = {
        None: None,
        "reg": X @ np.arange(1.0, 5.0) + 0.1 * rng.random(48),
        "clf": (X[:, 0] + 0.2 * rng.random(48) > 0.6).astype(np.float64),
        "count": np.floor(3 * X[:, 0] + X[:, 1]),
    }
    if kind == "kernel":
        return X @ X.T, None
    if kind == "labels":  # LabelEncoder works on a 1-d array of labels
        return np.floor(5 * X[:, 0]), None
    return X, y.get(kind)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("name", list(_cases()))
def test_dump_load_everywhere(name, backend):
    factory, kind = _cases()[name]
    Xn, yn = _data(kind)
    X = _to_backend(Xn, backend)
    y = None if yn is None else _to_backend(yn, backend)
    with warnings.catch_warnings(), sklearn.config_context(array_api_dispatch=True):
        warnings.simplefilter("ignore")  # solver notices from scikit-learn
        est = factory()
        if (name, backend) in KNOWN_LIMITS:  # before devpersist is involved
            error, match = KNOWN_LIMITS[name, backend]
            with pytest.raises(error, match=match):
                est.fit(X) if y is None else est.fit(X, y)
            pytest.skip(f"scikit-learn {sklearn.__version__} cannot fit {name} on {backend}")
        est.fit(X) if y is None else est.fit(X, y)
        expected = _outputs(est, X)
        data = devpersist.dumps(est)
    assert expected, "no method to compare"
    saved_devices = {a["device"] for a in devpersist.info(data)["arrays"]}
    # a model without device arrays (Binarizer) requires nothing: like the original
    # object, it follows the caller's configuration, so the caller sets it
    from _journey import holds_device_arrays

    def caller():
        if holds_device_arrays(est):
            return contextlib.nullcontext()
        return sklearn.config_context(array_api_dispatch=True)

    # 1. the original device: identical outputs, same library and device
    same = devpersist.loads(data)
    with caller():
        got = _outputs(same, X)
    assert got.keys() == expected.keys()
    for method, value in expected.items():
        assert type(got[method]) is type(value)
        assert _device(got[method]) == _device(value)
        assert np.array_equal(_numpy(got[method]), _numpy(value), equal_nan=True), method

    # 2. the host device of the same library: same values, host arrays
    host = devpersist.loads(data, device=HOST[backend])
    assert {a["device"] for a in devpersist.info(data)["arrays"]} == saved_devices  # file untouched
    with caller():
        got = _outputs(host, _to_host(X, backend))
    assert got.keys() == expected.keys()
    for method, value in expected.items():
        assert type(got[method]) is type(value), method
        assert _device(got[method]) == HOST[backend]
        np.testing.assert_allclose(_numpy(got[method]), _numpy(value), rtol=1e-12, atol=1e-12)

    # 3. plain numpy: no dispatch, no torch needed; numpy kernels round differently
    plain = devpersist.loads(data, namespace="numpy")
    assert not isinstance(plain, devpersist.ConfiguredEstimator)  # nothing to restore
    got = _outputs(plain, Xn)
    assert got.keys() == expected.keys()
    for method, value in expected.items():
        assert isinstance(got[method], np.ndarray), method
        np.testing.assert_allclose(got[method], _numpy(value), rtol=1e-6, atol=1e-9)
