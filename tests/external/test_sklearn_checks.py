"""scikit-learn's own ``check_estimators_pickle``, run with devpersist in place of pickle.

Source: ``sklearn/utils/estimator_checks.py`` (``check_estimators_pickle``, scikit-learn
1.9). The check itself runs unchanged; only its serializer is swapped:

- plain: the module-level ``pickle`` the check calls becomes an object whose
  ``dumps``/``loads`` are ``devpersist.dumps`` and ``devpersist.loads`` (default, safe
  options). The check's assertion that the bytes contain ``b"_sklearn_version"`` holds
  for devpersist's graph too, since the estimator's state is pickled into it.
- ``readonly_memmap=True``: the check's ``create_memmap_backed_data`` (``joblib.dump`` then
  ``joblib.load(mmap_mode="r")``) becomes ``devpersist.dump`` to a file then
  ``devpersist.load(path, mmap=True)``, which builds read-only arrays over the mapped file.

The instances and the applicable set are scikit-learn's: every estimator of its test
instance generator that ``_yield_all_checks`` would check (2-d input, no ``_skip_test``
tag), minus its own expected failures for this check.

The same check also runs on scikit-learn-intelex's estimators: every class of its patch
map (``sklearnex.dispatcher.get_patch_map``) built with default parameters, plus the
non-default instances sklearnex's own tests single out (its ``SPECIAL_INSTANCES``:
``SVC(probability=True)``, brute-force neighbors, ``DummyRegressor(strategy="constant")``...).
A case whose check fails with plain pickle too is not applicable (skipped, with
pickle's error): that is the estimator's limitation, not the serializer's.

Not applicable: estimators taking no 2-d array (text vectorizers, ``DictVectorizer``,
``FeatureHasher``, label encoders, image patch extractors, ``IsotonicRegression``):
scikit-learn does not run the check on them. They round-trip in ``test_estimator_matrix.py``.
"""

from __future__ import annotations

import types
import warnings

import pytest
from _sklearn_cases import instance_id, sklearn_instances

import devpersist


def _applicable() -> list[object]:
    from sklearn.utils import get_tags
    from sklearn.utils._test_common.instance_generator import _get_expected_failed_checks

    result = []
    for est in sklearn_instances():
        tags = get_tags(est)
        if not tags.input_tags.two_d_array or tags._skip_test:
            continue
        if "check_estimators_pickle" in _get_expected_failed_checks(est):
            continue
        result.append(est)
    return result


def _devpersist_memmap(tmp_path):
    def create_memmap_backed_data(data, mmap_mode="r", return_folder=False):
        assert mmap_mode == "r" and not return_folder  # what the check asks for
        path = tmp_path / "estimator.dvp"
        devpersist.dump(data, path)
        return devpersist.load(path, mmap=True)

    return create_memmap_backed_data


@pytest.mark.parametrize("readonly_memmap", [False, True], ids=["plain", "readonly_memmap"])
@pytest.mark.parametrize("estimator", _applicable(), ids=instance_id)
def test_check_estimators_pickle(estimator, readonly_memmap, monkeypatch, tmp_path):
    from sklearn.utils import estimator_checks

    shim = types.SimpleNamespace(dumps=devpersist.dumps, loads=devpersist.loads)
    monkeypatch.setattr(estimator_checks, "pickle", shim)
    monkeypatch.setattr(estimator_checks, "create_memmap_backed_data", _devpersist_memmap(tmp_path))
    with warnings.catch_warnings():
        # The check fits with scikit-learn's own data; convergence and similar warnings
        # are the estimator's business, not the serializer's.
        warnings.simplefilter("ignore")
        estimator_checks.check_estimators_pickle(
            type(estimator).__name__, estimator, readonly_memmap=readonly_memmap
        )


def _sklearnex_instances() -> list[object]:
    try:
        from sklearnex.dispatcher import get_patch_map
    except ImportError:
        return [None]  # the test skips: sklearnex absent
    from sklearn.base import BaseEstimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Each entry: (sklearn module, name, sklearnex object, sklearn object).
        classes = {
            info[2] for info in get_patch_map().values()
            if isinstance(info[2], type) and issubclass(info[2], BaseEstimator)
        }  # fmt: skip
        ordered = sorted(classes, key=lambda c: (c.__module__, c.__name__))
        # scikit-learn's instance generator fits TSNE with perplexity=2 (the check's 30
        # samples are too few for the default 30): the same for sklearnex's TSNE.
        instances = [cls(perplexity=2) if cls.__name__ == "TSNE" else cls() for cls in ordered]
        instances += _sklearnex_special_instances()
    return instances


def _sklearnex_special_instances() -> list[object]:
    """sklearnex's ``SPECIAL_INSTANCES`` (sklearnex/tests/utils/base.py), rebuilt here:
    that module needs polars at import."""
    from sklearnex.basic_statistics import BasicStatistics, IncrementalBasicStatistics
    from sklearnex.dummy import DummyRegressor
    from sklearnex.linear_model import LogisticRegression
    from sklearnex.neighbors import (
        KNeighborsClassifier,
        KNeighborsRegressor,
        LocalOutlierFactor,
        NearestNeighbors,
    )
    from sklearnex.svm import SVC, NuSVC

    return [
        LocalOutlierFactor(novelty=True),
        SVC(probability=True),
        NuSVC(probability=True),
        KNeighborsClassifier(algorithm="brute"),
        KNeighborsRegressor(algorithm="brute"),
        NearestNeighbors(algorithm="brute"),
        LogisticRegression(solver="newton-cg"),
        BasicStatistics(),
        IncrementalBasicStatistics(),
        DummyRegressor(strategy="constant", constant=1.0),
    ]


def _sklearnex_id(est: object) -> str:
    return "sklearnex-absent" if est is None else f"{type(est).__module__}.{est!r}"


@pytest.mark.parametrize("readonly_memmap", [False, True], ids=["plain", "readonly_memmap"])
@pytest.mark.parametrize("estimator", _sklearnex_instances(), ids=_sklearnex_id)
def test_check_estimators_pickle_sklearnex(estimator, readonly_memmap, monkeypatch, tmp_path):
    pytest.importorskip("sklearnex")
    from sklearn.utils import estimator_checks

    name = type(estimator).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # with plain pickle (and joblib's memmap) first: is the check applicable?
            estimator_checks.check_estimators_pickle(name, estimator, readonly_memmap)
        except Exception as exc:
            pytest.skip(f"fails with pickle too: {type(exc).__name__}: {exc}"[:300])
        shim = types.SimpleNamespace(dumps=devpersist.dumps, loads=devpersist.loads)
        monkeypatch.setattr(estimator_checks, "pickle", shim)
        monkeypatch.setattr(
            estimator_checks, "create_memmap_backed_data", _devpersist_memmap(tmp_path)
        )
        estimator_checks.check_estimators_pickle(name, estimator, readonly_memmap)


def test_the_check_still_uses_what_we_swap():
    """If scikit-learn renames what we patch, the swap above would test pickle instead."""
    import inspect

    from sklearn.utils import estimator_checks

    source = inspect.getsource(estimator_checks.check_estimators_pickle)
    assert "pickle.dumps(" in source and "pickle.loads(" in source
    assert "create_memmap_backed_data(" in source
    assert estimator_checks.pickle.__name__ == "pickle"
