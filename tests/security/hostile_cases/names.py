"""Dotted names that traverse modules or attributes, malformed names, modules whose import runs code."""

from __future__ import annotations

import _hostile as H

from hostile_cases.build import T, py, touch, ucall

# 4. Dotted names that traverse modules or attributes; malformed names.
NAME_CASES = [
    ucall("pathlib", "os.system", lambda c: [T(touch(c))]),
    ucall("sklearn", "utils.os", lambda c: []),
    ucall("sklearn.base", "os", lambda c: []),
    ucall("sklearn.base", "__builtins__", lambda c: []),
    ucall("sklearn.base", "BaseEstimator.__init__.__globals__", lambda c: []),
    ucall("sklearn.metrics.pairwise", "np", lambda c: []),
    ucall("builtins", "str.__class__", lambda c: []),
    ucall("numpy", "lib", lambda c: []),
    ucall("sklearn.utils._testing", "TempMemmap", lambda c: [], watch=("sklearn.utils._testing",)),
    ucall("sklearn.datasets", "fetch_openml", lambda c: [T("x")], watch=("sklearn.datasets",)),
    ucall(
        "sklearn.experimental.enable_iterative_imputer",
        "IterativeImputer",
        lambda c: [],
        watch=("sklearn.experimental",),
    ),
    ucall("sklearn.utils._show_versions", "show_versions", lambda c: []),
    ucall("sklearn.utils.discovery", "all_estimators", lambda c: []),
    ucall("sklearn.utils.validation", "check_array", lambda c: [H.NONE]),
    ucall(
        "sklearn.utils.estimator_checks",
        "check_estimator",
        lambda c: [H.NONE],
        watch=("sklearn.utils.estimator_checks", "sklearn.utils._testing", "sklearn.datasets"),
    ),
    ucall("sklearn.base ", "BaseEstimator", lambda c: []),
    ucall("", "eval", lambda c: [T(py(c))]),
    ucall("builtins", "", lambda c: []),
    ucall("\u0455klearn.base", "BaseEstimator", lambda c: [], case_id="cyrillic-lookalike-module"),
    ucall("sklearn..base", "BaseEstimator", lambda c: []),
    ucall("os/system", "x", lambda c: []),
    ucall("builtins", "eval\n", lambda c: [T(py(c))]),
    # 5. modules whose import runs code: checked before any import
    ucall("antigravity", "x", lambda c: [], watch=("antigravity", "webbrowser")),
    ucall("this", "s", lambda c: [], watch=("this",)),
    ucall("__hello__", "main", lambda c: [], watch=("__hello__",)),
    ucall("__phello__", "spam", lambda c: [], watch=("__phello__",)),
]
