"""Derive the allowlist's library names from the installed libraries (a developer tool).

``python -m devpersist._derive`` writes ``devpersist/_derived_names.json``;
``python -m devpersist._derive --check`` writes nothing and exits 1, listing them, when the
installed libraries have names the committed table lacks (a new scikit-learn version).

It lives in the package, not under ``tests/``, so that a user whose library versions
differ from the table's can run ``--check`` against their own installation. It is never
imported by a load: it imports every module of scikit-learn, scikit-learn-intelex, oneDAL
and daal4py (outside test, ``__main__``, experimental and build modules), which a load
must not do.

Two passes find the reconstructors:

1. **by inspection** of every module: classes defined there that derive from an
   estimator or fitted-state base (:data:`devpersist._rules.BASES`), Cython
   ``__pyx_unpickle_*`` reconstructors with their extension types, ``newObj``
   reconstructors, metric and score functions (references);
2. **by reduction**: the estimators of scikit-learn's test instance generator and every
   sklearnex/daal4py estimator are fitted on small binary, multiclass and regression
   problems and pickled; every global those pickles name under the four libraries is
   recorded with its kind (this finds ``__reduce__`` targets that follow no naming
   pattern, and oneDAL's classes, which share no base).

numpy and scipy.special ufuncs are recorded under the module and name pickle writes
for them (found by pickling each one), and under their public name (scipy.special's
array API wrappers pickle by it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pickle
import pkgutil
import sys
import types
import warnings
from pathlib import Path
from typing import Any

from . import _rules
from ._replay import replay

OUT = Path(__file__).with_name("_derived_names.json")
PACKAGES = ("sklearn", "sklearnex", "onedal", "daal4py")


def _skipped(module: str) -> bool:
    return any(_rules.forbidden_part(p) for p in module.split(".")[1:])


def _modules(package: str) -> list[types.ModuleType]:
    """Every importable module of ``package``, never descending into skipped ones."""
    try:
        root = importlib.import_module(package)
    except ImportError:
        return []
    found = [root]
    todo = [root]
    while todo:
        pkg = todo.pop()
        for info in pkgutil.iter_modules(getattr(pkg, "__path__", []), pkg.__name__ + "."):
            if _skipped(info.name):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mod = importlib.import_module(info.name)
            except Exception:  # optional backends (GPU builds), missing extras
                continue
            found.append(mod)
            if info.ispkg:
                todo.append(mod)
    return found


def inspect_modules(table: dict[str, dict[str, str]]) -> None:
    """Pass 1: names found by looking at every module's namespace."""
    bases = _rules.bases(import_missing=True)
    for package in PACKAGES:
        for mod in _modules(package):
            name = mod.__name__
            for attr, obj in list(vars(mod).items()):
                kind = None
                if attr.startswith("__pyx_unpickle_") or attr == "newObj":
                    kind = "reconstructor"
                elif isinstance(obj, type) and getattr(obj, "__module__", None) == name:
                    if issubclass(obj, bases):
                        kind = "class"
                elif _rules.is_function(obj) and getattr(obj, "__module__", None) == name:
                    if any(name == m or name.startswith(m + ".") for m in _rules.FUNCTION_MODULES):
                        if not attr.startswith("__"):
                            kind = "function"
                if kind is not None:
                    table.setdefault(name, {})[attr] = kind


def pickled_names(obj: Any) -> dict[tuple[str, str], bool]:
    """The globals pickling ``obj`` names, each with whether the stream calls it (the
    stream is replayed inertly: :mod:`devpersist._replay`)."""
    _, record, _ = replay(pickle.dumps(obj, protocol=5))
    return {name: name in record.called for name in record.names}


def _problems() -> dict[str, tuple[Any, Any]]:
    import numpy as np

    rng = np.random.RandomState(0)
    X = np.abs(rng.normal(size=(60, 4))) + 0.1
    return {
        "binary": (X, np.arange(60) % 2),
        "multiclass": (X, np.arange(60) % 3),
        "regression": (X, X[:, 0] * 2 + 1),
    }


def _fitted(estimator: Any) -> list[Any]:
    """``estimator`` fitted on each problem it accepts (silently skipping the others)."""
    from sklearn.base import clone, is_classifier, is_regressor

    out = []
    for kind, (X, y) in _problems().items():
        if kind != "regression" and not is_classifier(estimator):
            if kind == "multiclass" or is_regressor(estimator):
                continue
        if kind == "regression" and is_classifier(estimator):
            continue
        try:
            est = clone(estimator)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            out.append(est)
        except Exception:
            continue
    return out


def _instances() -> list[Any]:
    from sklearn.utils._test_common.instance_generator import _tested_estimators

    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found += list(_tested_estimators())
        for package in ("sklearnex", "daal4py"):
            for mod in _modules(package):
                for attr, obj in list(vars(mod).items()):
                    if (
                        isinstance(obj, type)
                        and obj.__module__ == mod.__name__
                        and not attr.startswith("_")
                        and hasattr(obj, "fit")
                        and hasattr(obj, "get_params")
                    ):
                        try:
                            found.append(obj())
                        except Exception:
                            continue
    from sklearn.dummy import DummyRegressor

    found.append(DummyRegressor(strategy="constant", constant=1.0))
    try:
        from sklearnex.dummy import DummyRegressor as XDummy

        found.append(XDummy(strategy="constant", constant=1.0))
    except ImportError:
        pass
    return found


def reduce_instances(table: dict[str, dict[str, str]], seen: dict[str, str]) -> None:
    """Pass 2: names written by pickling fitted instances."""
    for estimator in _instances():
        for fitted in [estimator, *_fitted(estimator)]:
            try:
                names = pickled_names(fitted)
            except Exception:
                continue
            for (module, name), called in names.items():
                if module.partition(".")[0] not in PACKAGES:
                    continue
                if _skipped(module) or "." in name:
                    seen[f"{module}.{name}"] = "outside the rule (nested or skipped module)"
                    continue
                try:
                    obj = getattr(importlib.import_module(module), name)
                except (ImportError, AttributeError):
                    continue
                if isinstance(obj, type):
                    kind = "class"
                elif called:
                    kind = "reconstructor"  # a __reduce__ target
                else:
                    kind = "function"  # a function kept as a value (a reference)
                table.setdefault(module, {}).setdefault(name, kind)


def ufuncs(table: dict[str, dict[str, str]]) -> None:
    """numpy and scipy.special ufuncs, under the names pickle writes for them."""
    import numpy as np

    spaces = [np]
    try:
        import scipy.special

        spaces.append(scipy.special)
    except ImportError:
        pass
    for space in spaces:
        for attr in dir(space):
            obj = getattr(space, attr)
            if isinstance(obj, np.ufunc):
                names = pickled_names(obj)
                for module, name in names:
                    table.setdefault(module, {})[name] = "ufunc"
                # with SCIPY_ARRAY_API=1, scipy.special exposes a dispatching wrapper
                # under the public name, which pickle writes as scipy.special.<name>
                table.setdefault(space.__name__, {})[attr] = "ufunc"


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def derive(dynamic: bool = True) -> dict[str, Any]:
    """The table, as written to ``_derived_names.json``."""
    table: dict[str, dict[str, str]] = {}
    seen: dict[str, str] = {}
    inspect_modules(table)
    if dynamic:
        reduce_instances(table, seen)
    ufuncs(table)
    return {
        "made_by": "python -m devpersist._derive",
        "made_from": {
            d: _version(d)
            for d in ("scikit-learn", "scikit-learn-intelex", "numpy", "scipy", "daal")
        },
        "modules": {m: dict(sorted(table[m].items())) for m in sorted(table)},
        "not_admitted": dict(sorted(seen.items())),
    }


def missing(derived: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """Names the installed libraries have that the committed table lacks."""
    have = committed["modules"]
    return sorted(
        f"{m}.{n}"
        for m, names in derived["modules"].items()
        for n in names
        if n not in have.get(m, {})
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devpersist._derive", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--static", action="store_true", help="skip the fitting pass")
    args = parser.parse_args(argv)
    derived = derive(dynamic=not args.static)
    if args.check:
        lacking = missing(derived, json.loads(OUT.read_text()))
        for name in lacking:
            print(name)
        return 1 if lacking else 0
    OUT.write_text(json.dumps(derived, indent=1, sort_keys=False) + "\n")
    count = sum(len(v) for v in derived["modules"].values())
    print(f"wrote {count} names in {len(derived['modules'])} modules to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
