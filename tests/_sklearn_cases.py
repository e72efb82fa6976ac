"""scikit-learn's estimators for round-trip tests, and the outputs the tests compare.

The instances come from scikit-learn's own test instance generator, so coverage follows
scikit-learn's estimator list rather than a hand-kept one. The variation matrix
(``_variations``, ``test_estimator_matrix.py``) fits each on numeric data of every target
kind; the estimators that take no 2-d numeric X (text, dicts, labels, images) are fitted
here on a fixed input of their kind (:func:`fit_special_input`). :func:`outputs` is what
every round trip compares, before and after.
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


def fit_special_input(est: Any) -> tuple[Any, Any]:
    """Fit a clone of an estimator that takes no 2-d numeric X; return it and its X."""
    from sklearn.base import clone

    special = _special_input(est)
    if special is None:
        raise ValueError(f"{type(est).__name__} takes 2-d numeric input")
    X, y = special
    fitted = clone(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(X) if y is None else fitted.fit(X, y)
    return fitted, X


def outputs(est: Any, X: Any) -> dict[str, Any]:
    """Each output method's result on ``X``; a method that raises records its error type
    as ``("raised", name)``, so a round trip must raise the same way."""
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
