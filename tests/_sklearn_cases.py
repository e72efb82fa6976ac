"""Fitted scikit-learn estimators for round-trip tests.

The instances come from scikit-learn's own test instance generator, fitted the way
scikit-learn's ``check_estimators_pickle`` fits them (same data, same tag handling), so
coverage follows scikit-learn's estimator list rather than a hand-kept one.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)


@lru_cache(maxsize=1)
def sklearn_instances() -> tuple[Any, ...]:
    from sklearn.utils._test_common.instance_generator import _tested_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(_tested_estimators())


def instance_id(est: Any) -> str:
    from sklearn.utils._test_common.instance_generator import _get_check_estimator_ids

    return str(_get_check_estimator_ids(est))


_TEXT = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "a lazy fox sleeps",
    "the dog barks at the fox",
]


def _special_input(est: Any) -> tuple[Any, Any] | None:
    """Inputs for estimators that take no 2-d numeric X (text, dicts, labels, images)."""
    from sklearn.utils import get_tags

    tags = get_tags(est).input_tags
    if tags.two_d_array:
        return None
    if tags.string:
        return _TEXT, None
    if tags.dict:
        return [{"a": 1.0, "b": 2.0}, {"b": 3.0, "c": 1.5}, {"a": 0.5}], None
    if tags.three_d_array:
        rng = np.random.RandomState(0)
        return rng.rand(2, 8, 8), None
    if tags.one_d_array:
        rng = np.random.RandomState(0)
        x = rng.rand(20)
        return x, 2 * x + rng.rand(20)
    if type(est).__name__ == "MultiLabelBinarizer":
        return [("red", "blue"), ("blue",), ("green", "red")], None
    return np.array(["cat", "dog", "cat", "bird", "dog"]), None


def fit_instance(est: Any) -> tuple[Any, Any]:
    """Fit a clone of ``est`` as ``check_estimators_pickle`` does; return it and X."""
    from sklearn.base import clone

    special = _special_input(est)
    if special is not None:
        X, y = special
        fitted = clone(est)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted.fit(X) if y is None else fitted.fit(X, y)
        return fitted, X
    return _fit_numeric(est)


def _fit_numeric(est: Any) -> tuple[Any, Any]:
    from sklearn.base import clone
    from sklearn.datasets import make_blobs
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.utils import get_tags
    from sklearn.utils._testing import set_random_state
    from sklearn.utils.estimator_checks import (
        _enforce_estimator_tags_X,
        _enforce_estimator_tags_y,
    )

    X, y = make_blobs(
        n_samples=30,
        centers=[[0, 0, 0], [1, 1, 1]],
        random_state=0,
        n_features=2,
        cluster_std=0.1,
    )
    X = _enforce_estimator_tags_X(est, X, kernel=rbf_kernel)
    if get_tags(est).input_tags.allow_nan:
        rng = np.random.RandomState(42)
        mask = rng.choice(X.size, 10, replace=False)
        X.reshape(-1)[mask] = np.nan
    fitted = clone(est)
    y = _enforce_estimator_tags_y(fitted, y)
    set_random_state(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(X, y)
    return fitted, X


def outputs(est: Any, X: Any) -> dict[str, Any]:
    """Every prediction-like method's output on ``X`` (methods that raise are skipped)."""
    result = {}
    for name in METHODS:
        method = getattr(est, name, None)
        if method is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result[name] = method(X)
        except Exception as exc:
            result[name] = ("raised", type(exc).__name__)
    return result
