"""Named ``trusted=`` lists for third-party models, which you opt into per load.

devpersist's default allowlist covers scikit-learn, scikit-learn-intelex, numpy and
scipy. A fitted LightGBM, XGBoost, CatBoost or quantile-forest model also names a few
classes of its own library; these presets list exactly those, so that loading one is
a deliberate, readable choice::

    model = devpersist.load("model.dvp", trusted=devpersist.presets.LIGHTGBM)

Each preset holds classes only, never a function, and no class whose unpickling runs
code named by the file: what each one does when loaded is stated beside it. What a
preset *does* trust is the library's own parser for its native model format (the
booster bytes inside the estimator's state): like oneDAL's archives, that parser is
native code that devpersist does not validate. Load such files from authors you trust
to be honest, not merely from intact files.

Several presets may be combined: ``trusted=[*presets.LIGHTGBM, *presets.XGBOOST]``.
"""

from __future__ import annotations

__all__ = ["CATBOOST", "LIGHTGBM", "QUANTILE_FOREST", "XGBOOST"]

#: LightGBM's scikit-learn estimators. The estimator is a plain Python object (its
#: ``__dict__``); ``lightgbm.basic.Booster.__setstate__`` rebuilds the booster from the
#: model text saved in the state, through LightGBM's C API
#: (``LGBM_BoosterLoadModelFromString``).
LIGHTGBM: tuple[str, ...] = (
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRanker",
    "lightgbm.sklearn.LGBMRegressor",
)

#: XGBoost's scikit-learn estimators (``xgboost`` or ``xgboost-cpu``). The estimator
#: pickles its ``__dict__``; ``xgboost.core.Booster.__setstate__`` passes the saved raw
#: model bytes to ``XGBoosterUnserializeFromBuffer``.
XGBOOST: tuple[str, ...] = (
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor",
    "xgboost.sklearn.XGBRanker",
    "xgboost.sklearn.XGBRegressor",
)

#: CatBoost's estimators. ``__getstate__`` returns the init parameters plus the model
#: serialized by CatBoost (``__model``) and a few fitted arrays; ``__setstate__`` hands
#: the model bytes to CatBoost's native ``_deserialize_model``. Read from CatBoost's
#: ``core.py``; not exercised by devpersist's CI (the wheel is large).
CATBOOST: tuple[str, ...] = (
    "catboost.core.CatBoost",
    "catboost.core.CatBoostClassifier",
    "catboost.core.CatBoostRanker",
    "catboost.core.CatBoostRegressor",
)

#: quantile-forest's regressors: scikit-learn forests (their trees are scikit-learn
#: ``Tree`` objects, allowlisted and validated by default) plus the Cython
#: ``QuantileForest``, which holds the training targets and the leaf index of each
#: training sample as arrays. Those indices are used by native code at predict time and
#: are not validated by devpersist.
QUANTILE_FOREST: tuple[str, ...] = (
    "quantile_forest._quantile_forest.ExtraTreesQuantileRegressor",
    "quantile_forest._quantile_forest.RandomForestQuantileRegressor",
    "quantile_forest._quantile_forest_fast.QuantileForest",
)
