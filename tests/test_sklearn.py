"""scikit-learn round trips the estimator matrix does not cover: pandas frames with string
columns, string labels with float32 and sparse input, masked arrays and numpy scalars in a
search's results, and a warning-free round trip.

Every estimator of scikit-learn's test instance generator, on every target kind, is in
``test_estimator_matrix.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _compare import assert_identical

import devpersist


def _string_frame():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50_000, 10_000, n),
            "city": rng.choice(["paris", "oslo", "lima"], n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    ), rng.choice(["churn", "stay"], n)


def test_column_transformer_pandas_strings():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _string_frame()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "income"]),
                ("cat", OneHotEncoder(), ["city", "plan"]),
            ]
        ),
        LogisticRegression(),
    ).fit(X, y)
    loaded = devpersist.loads(devpersist.dumps(model))
    assert list(loaded.feature_names_in_) == list(X.columns)
    assert loaded.classes_.tolist() == ["churn", "stay"]
    assert_identical(model.predict(X), loaded.predict(X))
    assert_identical(model.predict_proba(X), loaded.predict_proba(X))


def test_string_labels_float32_and_sparse_input():
    from scipy import sparse
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(1)
    X = rng.random((80, 6), dtype=np.float32)
    y = np.where(X[:, 0] > 0.5, "yes", "no")
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    Xs = sparse.csr_matrix(np.where(X > 0.6, X, 0))
    sgd = SGDClassifier(random_state=0).fit(Xs, y)
    both = devpersist.loads(devpersist.dumps({"forest": forest, "sgd": sgd, "Xs": Xs}))
    assert both["forest"].classes_.dtype == forest.classes_.dtype
    assert_identical(forest.predict_proba(X), both["forest"].predict_proba(X))
    assert_identical(forest.predict(X), both["forest"].predict(X))
    assert_identical(sgd.decision_function(Xs), both["sgd"].decision_function(Xs))
    assert (both["Xs"] != Xs).nnz == 0 and both["Xs"].format == "csr"


def test_grid_search_keeps_masked_arrays_and_numpy_scalars():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(2)
    X, y = rng.random((40, 3)), rng.random(40)
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=3).fit(X, y)
    loaded = devpersist.loads(devpersist.dumps(search))
    masked = search.cv_results_["param_alpha"]
    assert isinstance(loaded.cv_results_["param_alpha"], np.ma.MaskedArray)
    assert np.array_equal(
        np.ma.getmaskarray(masked), np.ma.getmaskarray(loaded.cv_results_["param_alpha"])
    )
    assert type(loaded.best_score_) is type(search.best_score_)
    assert loaded.best_score_ == search.best_score_
    assert_identical(search.predict(X), loaded.predict(X))


def test_warnings_clean():
    """A plain round trip emits no warning (pytest runs with warnings as errors)."""
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.eye(3), np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = devpersist.loads(devpersist.dumps(model))
    assert_identical(model.predict(np.eye(3)), loaded.predict(np.eye(3)))
