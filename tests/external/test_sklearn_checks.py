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

Not applicable: estimators taking no 2-d array (text vectorizers, ``DictVectorizer``,
``FeatureHasher``, label encoders, image patch extractors, ``IsotonicRegression``):
scikit-learn does not run the check on them. They round-trip in ``test_sklearn.py``.
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


def test_the_check_still_uses_what_we_swap():
    """If scikit-learn renames what we patch, the swap above would test pickle instead."""
    import inspect

    from sklearn.utils import estimator_checks

    source = inspect.getsource(estimator_checks.check_estimators_pickle)
    assert "pickle.dumps(" in source and "pickle.loads(" in source
    assert "create_memmap_backed_data(" in source
    assert estimator_checks.pickle.__name__ == "pickle"
