"""The allowlist: which globals a file may name, decided before anything is imported.

A name is a ``(module, qualname)`` pair as pickle writes it. It is allowed when

1. it is in :data:`EXACT` (builtins containers, numpy dtypes and scalars, scipy sparse
   formats, devpersist's own constructors...), some mapped to a checking substitute;
2. it is passed in ``trusted=`` by the caller (never read from the file);
3. it matches the scikit-learn rule: the module is ``sklearn`` or below, outside
   :data:`SKLEARN_EXCLUDED`, the name is one plain identifier, and once imported the
   object is a class defined under ``sklearn``, or a function defined under one of
   :data:`SKLEARN_FUNCTION_MODULES` (metrics and score functions: pure computation).

Step 3 is the only one that imports a module before the verdict, and it imports only
scikit-learn's own modules, which are installed code that the user already runs; the
strings are checked before that import. Nothing is ever allowed by module wildcard for
modules that expose code-running callables (``builtins``, ``os``, ``operator``,
``functools``, ``importlib``...): those are listed name by name or not at all.
"""

from __future__ import annotations

import importlib
import re
import types
from collections.abc import Callable, Iterable
from typing import Any

from ._exceptions import UntrustedTypeError

Name = tuple[str, str]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*\Z")
_PLAIN_NAME_RE = re.compile(rf"{_IDENT}\Z")


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar reconstructor, restricted to plain bytes of a non-object dtype."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UntrustedTypeError("numpy scalar with an object dtype or non-bytes payload")
    if len(data) != dtype.itemsize:
        raise UntrustedTypeError("numpy scalar payload does not match its dtype size")
    return np._core.multiarray.scalar(dtype, data)  # type: ignore[attr-defined]


def _numpy_dtype(obj: Any, align: Any = False, copy: Any = True) -> Any:
    """``numpy.dtype`` as pickle calls it, always returning a fresh copy: the stream may
    then BUILD it, which must never reach numpy's shared builtin dtypes."""
    import numpy as np

    return np.dtype(obj, bool(align), True)


_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def _bit_generator_class(name: Any) -> Any:
    import numpy.random as npr

    if isinstance(name, type):
        name = name.__name__
    if name not in _BIT_GENERATORS:
        raise UntrustedTypeError(f"unknown numpy bit generator {name!r}")
    return getattr(npr, name)


def _bit_generator_ctor(name: Any = "MT19937") -> Any:
    return _bit_generator_class(name)()


def _bit_generator(arg: Any) -> Any:
    """numpy passes either a bit generator (already rebuilt from the stream) or a name;
    the ``ctor`` callable numpy also passes is ignored, never called."""
    import numpy.random as npr

    if isinstance(arg, npr.BitGenerator):
        return arg
    return _bit_generator_ctor(arg)


def _randomstate_ctor(name: Any = "MT19937", ctor: Any = None) -> Any:
    import numpy.random as npr

    return npr.RandomState(_bit_generator(name))


def _generator_ctor(name: Any = "PCG64", ctor: Any = None) -> Any:
    import numpy.random as npr

    return npr.Generator(_bit_generator(name))


def _numpy_random(name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module("numpy.random"), name)


def _attr(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


# (module, qualname) -> zero-argument resolver. Resolvers import lazily, so listing a
# name costs nothing until a file uses it.
EXACT: dict[Name, Callable[[], Any]] = {}


def _add(
    module: str, names: Iterable[str], resolve: Callable[[str, str], Callable[[], Any]] = _attr
) -> None:
    for name in names:
        EXACT[(module, name)] = resolve(module, name)


# builtins: scalar types used as parameters (dtype=float...). eval/exec/getattr/open are
# absent on purpose, and so are the sized constructors (bytes(n), bytearray(n), list(range(n)))
# that would let a tiny file allocate unbounded memory; containers have their own opcodes.
_add("builtins", ["bool", "complex", "float", "int", "object", "slice", "str"])
_add("collections", ["OrderedDict", "defaultdict", "deque", "Counter"])
_add("datetime", ["date", "datetime", "time", "timedelta", "timezone"])

# numpy: dtypes, scalar types, a few pure reductions used as estimator parameters.
_NUMPY_TYPES = [
    "bool",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "longlong",
    "ulonglong",
    "float16",
    "float32",
    "float64",
    "longdouble",
    "complex64",
    "complex128",
    "clongdouble",
    "str_",
    "bytes_",
    "datetime64",
    "timedelta64",
    "void",
    "dtype",
    "number",
    "integer",
    "floating",
    "signedinteger",
    "unsignedinteger",
    "generic",
]
_NUMPY_FUNCTIONS = [
    "mean",
    "median",
    "average",
    "sum",
    "prod",
    "min",
    "max",
    "amin",
    "amax",
    "std",
    "var",
    "nanmean",
    "nanmedian",
    "nansum",
    "nanmin",
    "nanmax",
    "nanstd",
    "nanvar",
    "log",
    "log1p",
    "exp",
    "expm1",
    "sqrt",
    "abs",
    "absolute",
    "square",
    "sign",
    "tanh",
    "arcsinh",
    "clip",
    "round",
    "floor",
    "ceil",
    "percentile",
    "quantile",
]
_add("numpy", _NUMPY_TYPES + _NUMPY_FUNCTIONS)
for _mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
    EXACT[(_mod, "scalar")] = _const(_numpy_scalar)
EXACT[("numpy", "dtype")] = _const(_numpy_dtype)
_DTYPE_NAMES = (
    "Bool",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float16",
    "Float32",
    "Float64",
    "LongDouble",
    "Complex64",
    "Complex128",
    "CLongDouble",
    "Str",
    "Bytes",
    "DateTime64",
    "TimeDelta64",
    "Void",
)
_add("numpy.dtypes", [f"{t}DType" for t in _DTYPE_NAMES])
for _name in _BIT_GENERATORS:
    EXACT[("numpy.random", _name)] = _numpy_random(_name)
    EXACT[(f"numpy.random._{_name.lower()}", _name)] = _numpy_random(_name)
EXACT[("numpy.random._pcg64", "PCG64DXSM")] = _numpy_random("PCG64DXSM")
EXACT[("numpy.random", "RandomState")] = _numpy_random("RandomState")
EXACT[("numpy.random.mtrand", "RandomState")] = _numpy_random("RandomState")
EXACT[("numpy.random", "Generator")] = _numpy_random("Generator")
EXACT[("numpy.random._generator", "Generator")] = _numpy_random("Generator")
EXACT[("numpy.random", "SeedSequence")] = _numpy_random("SeedSequence")
EXACT[("numpy.random.bit_generator", "SeedSequence")] = _numpy_random("SeedSequence")
EXACT[("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")] = _attr(
    "numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"
)
EXACT[("numpy.random._pickle", "__bit_generator_ctor")] = _const(_bit_generator_ctor)
EXACT[("numpy.random._pickle", "__randomstate_ctor")] = _const(_randomstate_ctor)
EXACT[("numpy.random._pickle", "__generator_ctor")] = _const(_generator_ctor)

# scipy: sparse containers and the B-spline object (SplineTransformer).
for _fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil"):
    _add(f"scipy.sparse._{_fmt}", [f"{_fmt}_matrix", f"{_fmt}_array"])
_add("scipy.interpolate._bsplines", ["BSpline"])
# BSpline keeps its namespace's asarray: pure array construction.
_add("scipy._lib.array_api_compat.numpy._aliases", ["asarray"])

# devpersist's own reconstructors (objects the pickler writes through reducer_override).
_add(
    "devpersist._graph",
    [
        "_object_array",
        "_masked_array",
        "_namespace_module",
        "_device",
        "_onedal_return_type",
        "_torch_size",
        "_dtype",
    ],
)

# scikit-learn-intelex: its estimators follow the class rule below (module sklearnex);
# oneDAL's Python estimators and the pybind11 model objects they hold are listed one by
# one. A model object's state is a oneDAL binary archive parsed by native code: the
# checksums guarantee it is the archive that was saved, not that its author was honest.
_ONEDAL_CLASSES = {
    "onedal.linear_model.linear_model": ["LinearRegression", "Ridge"],
    "onedal.linear_model.incremental_linear_model": [
        "IncrementalLinearRegression",
        "IncrementalRidge",
    ],
    "onedal.linear_model.logistic_regression": ["LogisticRegression"],
    "onedal.decomposition.pca": ["PCA"],
    "onedal.decomposition.incremental_pca": ["IncrementalPCA"],
    "onedal.cluster.kmeans": ["KMeans"],
    "onedal.cluster.dbscan": ["DBSCAN"],
    "onedal.neighbors.neighbors": [
        "KNeighborsClassifier",
        "KNeighborsRegressor",
        "NearestNeighbors",
    ],
    "onedal.ensemble.forest": [
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ],
    "onedal.svm.svm": ["SVC", "SVR", "NuSVC", "NuSVR"],
    "onedal.basic_statistics.basic_statistics": ["BasicStatistics"],
    "onedal.basic_statistics.incremental_basic_statistics": ["IncrementalBasicStatistics"],
    "onedal.covariance.covariance": ["EmpiricalCovariance"],
    "onedal.covariance.incremental_covariance": ["IncrementalEmpiricalCovariance"],
}
_ONEDAL_NATIVE = {
    "linear_model.regression": ["model", "partial_train_result"],
    "kmeans.clustering": ["model"],
    "neighbors.classification": ["model"],
    "neighbors.search": ["model"],
    "decision_forest.classification": ["model"],
    "decision_forest.regression": ["model"],
    "svm.classification": ["model"],
    "svm.regression": ["model"],
    "svm.nu_classification": ["model"],
    "svm.nu_regression": ["model"],
    "decomposition.dim_reduction": ["model", "partial_train_result"],
    "basic_statistics": ["partial_compute_result"],
    "covariance": ["partial_compute_result"],
    "": ["from_table"],
}
for _module, _names in _ONEDAL_CLASSES.items():
    _add(_module, _names)
for _backend in ("onedal._onedal_py_host", "onedal._onedal_py_dpc"):
    for _sub, _names in _ONEDAL_NATIVE.items():
        _add(f"{_backend}.{_sub}" if _sub else _backend, _names)

# scikit-learn: the rule below, plus these non-class helpers.
_add("sklearn.neighbors._kd_tree", ["newObj"])
_add("sklearn.neighbors._ball_tree", ["newObj"])
_add("sklearn.metrics._dist_metrics", ["newObj"])

SKLEARN_EXCLUDED = (
    "tests",
    "_testing",
    "externals",
    "datasets",
    "experimental",
    "conftest",
    "_build_utils",
    "__check_build",
    "parallel",
    "_joblib",
    "_show_versions",
    "discovery",
    "_repr_html",
    "fixes",
    "_config",
    "estimator_checks",
    "_test_common",
    "callback",
    "_plotting",
    "sphinxext",
    "_dispatcher",
)
#: A class under the rule must derive from one of these ("module:qualname"): estimators,
#: and the fitted-state helpers they hold. Their constructors only store what they are
#: given; a class outside them (a callback that connects to an address in its
#: ``__setstate__``, say) is refused even though scikit-learn defines it.
SKLEARN_BASES = (
    "sklearn.base:BaseEstimator",
    "sklearn.tree._tree:Tree",
    "sklearn.tree._criterion:Criterion",
    "sklearn.tree._splitter:Splitter",
    "sklearn._loss.loss:BaseLoss",
    "sklearn._loss._loss:CyLossFunction",
    "sklearn._loss.link:BaseLink",
    "sklearn._loss.link:Interval",
    "sklearn.metrics._scorer:_BaseScorer",
    "sklearn.metrics._dist_metrics:DistanceMetric",
    "sklearn.metrics._dist_metrics:DistanceMetric32",
    "sklearn.gaussian_process.kernels:Kernel",
    "sklearn.gaussian_process.kernels:Hyperparameter",
    "sklearn.neighbors._kd_tree:KDTree",
    "sklearn.neighbors._ball_tree:BallTree",
    "sklearn.utils._bunch:Bunch",
    "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor",
    "sklearn.utils._metadata_requests:MetadataRequest",
    "sklearn.utils._metadata_requests:MethodMetadataRequest",
    "sklearn.utils._metadata_requests:MetadataRouter",
    "sklearn.utils._metadata_requests:MethodMapping",
    "sklearn.cluster._birch:_CFNode",
    "sklearn.cluster._birch:_CFSubcluster",
    "sklearn.cluster._bisect_k_means:_BisectingTree",
    "sklearn.calibration:_CalibratedClassifier",
    "sklearn.model_selection._split:BaseCrossValidator",
    "sklearn.model_selection._split:BaseShuffleSplit",
    "sklearn.model_selection._split:_RepeatedSplits",
    "sklearn.metrics._scorer:_PassthroughScorer",
    "sklearn.metrics._scorer:_MultimetricScorer",
    "sklearn.neural_network._stochastic_optimizers:BaseOptimizer",
)


def _bases() -> tuple[type, ...]:
    found = []
    for spec in SKLEARN_BASES:
        module, _, qualname = spec.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), qualname))
        except (ImportError, AttributeError):  # not in this scikit-learn version
            continue
    return tuple(found)


_bases_cache: list[tuple[type, ...]] = []
SKLEARN_FUNCTION_MODULES = (
    "sklearn.metrics",
    "sklearn.feature_selection._univariate_selection",
    "sklearn.feature_selection._mutual_info",
    "sklearn.cluster._kmeans",
)


#: Packages whose classes the rule admits (sklearnex: scikit-learn-intelex's estimators).
RULE_PACKAGES = ("sklearn", "sklearnex")


# --------------------------------------------------------------------------- uses
# What the stream may do with each approved global. The audit records which globals
# are called (REDUCE, NEWOBJ) and which results are then modified (BUILD, SETITEM,
# APPEND): a modified object must be fresh, or the file could rewrite shared state
# (numpy's namespace, scikit-learn's metric tables) that outlives the load.
REF, CALL, FRESH = "ref", "call", "fresh"
#: Types that may only be referenced (``dtype=float``): calling them on file data could
#: allocate without bound (``numpy.void(2**31)``) or expand shared references (``str``).
REFERENCE_ONLY = (
    {("builtins", n) for n in ("bool", "float", "int", "object", "str")}
    | {("numpy", n) for n in _NUMPY_TYPES}
    | {("numpy.dtypes", f"{t}DType") for t in _DTYPE_NAMES}
)
#: Functions that build objects: callable; FRESH ones return new objects (modifiable).
USES: dict[Name, str] = {
    ("numpy", "dtype"): FRESH,
    ("numpy._core.multiarray", "scalar"): CALL,
    ("numpy.core.multiarray", "scalar"): CALL,
    ("numpy.random._pickle", "__bit_generator_ctor"): FRESH,
    ("numpy.random._pickle", "__randomstate_ctor"): FRESH,
    ("numpy.random._pickle", "__generator_ctor"): FRESH,
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): FRESH,
    ("sklearn.neighbors._kd_tree", "newObj"): FRESH,
    ("sklearn.neighbors._ball_tree", "newObj"): FRESH,
    ("sklearn.metrics._dist_metrics", "newObj"): FRESH,
    ("devpersist._graph", "_object_array"): CALL,
    ("devpersist._graph", "_masked_array"): CALL,
    ("devpersist._graph", "_namespace_module"): CALL,
    ("devpersist._graph", "_device"): CALL,
    ("devpersist._graph", "_onedal_return_type"): CALL,
    ("devpersist._graph", "_torch_size"): CALL,
    ("devpersist._graph", "_dtype"): CALL,
}


def use_of(name: Name, obj: Any, trusted: frozenset[str]) -> str:
    """How the stream may use an approved global: REF, CALL or FRESH."""
    kind = USES.get(name)
    if kind is not None:
        return kind
    if name in REFERENCE_ONLY:
        return REF
    if dotted(name) in trusted:
        return FRESH  # the caller vouches for it
    return FRESH if isinstance(obj, type) else REF


def _sklearn_module_ok(module: str) -> bool:
    parts = module.split(".")
    return parts[0] in RULE_PACKAGES and not any(p in SKLEARN_EXCLUDED for p in parts[1:])


def _by_sklearn_rule(module: str, name: str) -> Any:
    """Resolve ``module.name`` under the scikit-learn rule, or return None."""
    if not _sklearn_module_ok(module) or not _PLAIN_NAME_RE.match(name) or name.startswith("__"):
        return None
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    own = getattr(obj, "__module__", None)
    if not isinstance(own, str) or not _sklearn_module_ok(own):
        return None
    if isinstance(obj, type):
        if not _bases_cache:
            _bases_cache.append(_bases())
        return obj if issubclass(obj, _bases_cache[0]) else None
    if own.partition(".")[0] != "sklearn":  # sklearnex: classes only
        return None
    if (
        isinstance(obj, (types.FunctionType, types.BuiltinFunctionType))
        or type(obj).__name__ == "cython_function_or_method"
    ):
        if any(own == m or own.startswith(m + ".") for m in SKLEARN_FUNCTION_MODULES):
            return obj
    return None


def dotted(name: Name) -> str:
    return f"{name[0]}.{name[1]}"


def normalize_trusted(trusted: Iterable[Any] | None) -> frozenset[str]:
    """``trusted`` entries as ``"module.qualname"`` strings (types and functions too)."""
    if trusted is None:
        return frozenset()
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    out = set()
    for item in trusted:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.add(dotted(item))
        elif hasattr(item, "__module__") and hasattr(item, "__qualname__"):
            out.add(f"{item.__module__}.{item.__qualname__}")
        else:
            raise TypeError(f"trusted entries are names, types or functions, not {item!r}")
    return frozenset(out)


def _resolve_trusted(module: str, name: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _well_formed(name: Any) -> bool:
    return (
        isinstance(name, tuple)
        and len(name) == 2
        and all(isinstance(p, str) for p in name)
        and _MODULE_RE.match(name[0]) is not None
        and _MODULE_RE.match(name[1]) is not None
    )


def untrusted(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> list[str]:
    """The names outside the allowlist, as sorted ``"module.qualname"`` strings.

    Only the scikit-learn rule imports anything (scikit-learn's own modules).
    """
    return sorted(
        dotted(n) if _well_formed(n) else repr(n) for n in names if _verdict(n, trusted) is None
    )


_rule_cache: dict[Name, Any] = {}


def _verdict(name: Name, trusted: frozenset[str]) -> Callable[[], Any] | None:
    if not _well_formed(name):
        return None
    resolver = EXACT.get(name)
    if resolver is not None:
        return resolver
    if dotted(name) in trusted:
        return lambda: _resolve_trusted(*name)
    if name not in _rule_cache:
        _rule_cache[name] = _by_sklearn_rule(*name)
    obj = _rule_cache[name]
    return None if obj is None else _const(obj)


_resolved: dict[tuple[frozenset[Name], frozenset[str]], dict[Name, Any]] = {}


def resolve(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> dict[Name, Any]:
    """Check every name first, then import and return them; raise if any is untrusted.

    Verdicts depend only on the names and ``trusted``, so a set seen before is answered
    from a cache (serving loads the same model file over and over).
    """
    key = (frozenset(names), trusted)
    approved = _resolved.get(key)
    if approved is None:
        approved = _resolve(key[0], trusted)
        if len(_resolved) < 256:
            _resolved[key] = approved
    return approved


def _resolve(names: Iterable[Name], trusted: frozenset[str]) -> dict[Name, Any]:
    names = list(names)
    verdicts = {n: _verdict(n, trusted) for n in names}
    bad = sorted(
        dotted(n) if _well_formed(n) else repr(n) for n, v in verdicts.items() if v is None
    )
    if bad:
        raise _untrusted(bad)
    return {n: v() for n, v in verdicts.items()}  # type: ignore[misc]


def _untrusted(bad: list[str]) -> UntrustedTypeError:
    return UntrustedTypeError(
        "the file refers to names outside the allowlist: "
        + ", ".join(bad)
        + ". Nothing was loaded. If you trust this file, pass them as trusted=[...]; "
        "devpersist.get_untrusted_types(file) lists them.",
        untrusted=bad,
    )


def prescreen(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> None:
    """Reject, by the strings alone, names that no rule could allow (imports nothing)."""
    bad = sorted(
        dotted(n) if _well_formed(n) else repr(n)
        for n in names
        if not _well_formed(n)
        or not (
            n in EXACT
            or dotted(n) in trusted
            or (
                _sklearn_module_ok(n[0])
                and _PLAIN_NAME_RE.match(n[1])
                and not n[1].startswith("__")
            )
        )
    )
    if bad:
        raise _untrusted(bad)


def check_uses(called: Iterable[Any], modified: Iterable[Any], approved: dict[Name, Any],
               trusted: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Every called global must be a constructor, every modified result a fresh object."""
    bad = []
    for origin in sorted(called, key=str):
        if use_of(origin, approved[origin], trusted) == REF:
            bad.append(f"calls {dotted(origin)}")
    for origin in sorted(modified, key=str):
        if use_of(origin, approved[origin], trusted) != FRESH:
            bad.append(f"modifies what {dotted(origin)} returns")
    if bad:
        raise UntrustedTypeError(
            "the object graph uses allowed names in ways the allowlist forbids: "
            + "; ".join(bad)
            + ". Nothing was loaded.",
            untrusted=[b.split(" ")[-1] if b.startswith("calls") else b.split(" ")[3] for b in bad],
        )
