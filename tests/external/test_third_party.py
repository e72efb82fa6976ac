"""Third-party models that skops' suite covers load with devpersist's presets, only with them.

Source of the cases: skops' ``skops/io/tests/test_external.py`` (LightGBM, XGBoost,
CatBoost and quantile-forest estimators fitted on classification, regression and
ranking data). Here each fitted model is refused by the default allowlist, names only
what its preset lists, and loads with ``trusted=`` that preset, predicting bit for bit.

A library that is not installed skips its cases (inside the test); CatBoost is not in
the ``[test]`` extra (a large wheel), so CI skips it. The preset's safety checks (classes
only, none from a module that can run code) need no library and always run.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from _compare import assert_identical

import devpersist
from devpersist import presets

# These suites save objects that a default load refuses on purpose (custom classes,
# operator functions, third-party models) and then test the refusal or trusted= on
# load; dump's save-time UntrustedTypeWarning (tested in tests/test_allowlist.py) is
# expected here, and a wrong refusal still fails the load that follows.
pytestmark = pytest.mark.filterwarnings("ignore::devpersist.UntrustedTypeWarning")

METHODS = ("predict", "predict_proba", "predict_quantiles", "apply")
PRESETS = {
    "lightgbm": presets.LIGHTGBM,
    "xgboost": presets.XGBOOST,
    "catboost": presets.CATBOOST,
    "quantile_forest": presets.QUANTILE_FOREST,
}


def _data(task):
    from sklearn.datasets import make_classification, make_regression

    if task in ("binary", "multiclass"):
        classes = 2 if task == "binary" else 3
        return make_classification(n_samples=80, n_features=6, n_informative=4,
                                   n_classes=classes, random_state=0)  # fmt: skip
    X, y = make_regression(n_samples=80, n_features=6, random_state=0)
    if task == "ranking":
        return X, (np.abs(y) // 40).astype(int).clip(0, 3)
    return X, y


def _estimators(library):
    """(estimator, task, fit kwargs) as skops' external tests build them."""
    lib = pytest.importorskip(library)
    quiet = {"lightgbm": {"verbose": -1}, "catboost": {"verbose": False}}.get(library, {})
    small = {"n_estimators": 4} if library != "catboost" else {"iterations": 4}
    if library == "lightgbm":
        return [(lib.LGBMClassifier(**small, **quiet), task, {}) for task in ("binary", "multiclass")] + [
            (lib.LGBMRegressor(**small, **quiet), "regression", {}),
            (lib.LGBMRanker(**small, **quiet), "ranking", {"group": [40, 40]}),
        ]  # fmt: skip
    if library == "xgboost":
        return [(cls(**small), task, {}) for cls in (lib.XGBClassifier, lib.XGBRFClassifier)
                for task in ("binary", "multiclass")] + [
            (lib.XGBRegressor(**small), "regression", {}),
            (lib.XGBRFRegressor(**small), "regression", {}),
            (lib.XGBRanker(**small), "ranking", {"qid": np.repeat([0, 1], 40)}),
        ]  # fmt: skip
    if library == "catboost":
        return [(lib.CatBoostClassifier(**small, **quiet), task, {}) for task in ("binary", "multiclass")] + [
            (lib.CatBoostRegressor(**small, **quiet), "regression", {}),
            (lib.CatBoostRanker(**small, **quiet), "ranking", {"group_id": np.repeat([0, 1], 40)}),
        ]  # fmt: skip
    return [
        (lib.RandomForestQuantileRegressor(**small, random_state=0), "regression", {}),
        (lib.ExtraTreesQuantileRegressor(**small, random_state=0), "regression", {}),
    ]


def _outputs(est, X):
    result = {}
    for name in METHODS:
        if hasattr(est, name):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result[name] = getattr(est, name)(X)
    return result


@pytest.mark.parametrize("library", list(PRESETS))
def test_preset_loads_and_is_needed(library):
    for est, task, fit_kwargs in _estimators(library):
        X, y = _data(task)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, **fit_kwargs)
        data = devpersist.dumps(est)
        what = f"{type(est).__name__} ({task})"
        with pytest.raises(devpersist.UntrustedTypeError):
            devpersist.loads(data)
        needed = devpersist.get_untrusted_types(data)
        assert needed and set(needed) <= set(PRESETS[library]), (what, needed)
        loaded = devpersist.loads(data, trusted=PRESETS[library])
        assert type(loaded) is type(est), what
        before, after = _outputs(est, X), _outputs(loaded, X)
        assert before.keys() == after.keys() and before, what
        for method in before:
            assert_identical(before[method], after[method], f"{what}.{method}")


# Modules whose callables can run code or touch the system; a preset names none of them.
FORBIDDEN_PREFIXES = ("builtins.", "os.", "posix.", "nt.", "subprocess.", "sys.", "functools.",
                      "operator.", "importlib.", "runpy.", "pickle.", "shutil.", "socket.",
                      "ctypes.", "code.", "pty.", "io.", "marshal.", "types.", "inspect.")  # fmt: skip


@pytest.mark.parametrize("name", sorted(presets.__all__))
def test_preset_names_only_library_classes(name):
    preset = getattr(presets, name)
    assert isinstance(preset, tuple) and preset == tuple(sorted(set(preset)))
    library = {"LIGHTGBM": "lightgbm", "XGBOOST": "xgboost", "CATBOOST": "catboost",
               "QUANTILE_FOREST": "quantile_forest"}[name]  # fmt: skip
    assert preset is PRESETS[library]
    for dotted in preset:
        assert dotted.startswith(library + "."), dotted
        assert not dotted.startswith(FORBIDDEN_PREFIXES), dotted
        module, _, qualname = dotted.rpartition(".")
        assert qualname.isidentifier() and not qualname.startswith("__"), dotted


@pytest.mark.parametrize("library", list(PRESETS))
def test_preset_names_resolve_to_classes_defined_there(library):
    pytest.importorskip(library)
    for dotted in PRESETS[library]:
        module, _, qualname = dotted.rpartition(".")
        obj = getattr(importlib.import_module(module), qualname)
        assert isinstance(obj, type), f"{dotted} is not a class"
        assert (obj.__module__, obj.__qualname__) == (module, qualname), dotted


def test_presets_module_is_exported():
    assert devpersist.presets is presets
    assert "presets" in devpersist.__all__
