"""The allowlist engine: which globals a file may name, decided before anything is imported.

A name is a ``(module, qualname)`` pair as pickle writes it. Its verdict, in order:

1. malformed strings are refused; names in ``trusted=`` (from the caller, never from the
   file) are admitted; so are the hand-made entries of :data:`EXACT` (builtins
   containers, numpy dtypes and scalars, scipy sparse formats, devpersist's own
   reconstructors...), some mapped to a checking substitute;
2. names on the never list (:func:`devpersist._rules.never`) are refused;
3. names of the derived table (:func:`devpersist._rules.derived`: classes,
   reconstructors, metric functions and ufuncs found in the installed libraries by
   ``python -m devpersist._derive``) are admitted, and so, by the class rule, is any
   plain-identifier class of a scikit-learn, sklearnex or daal4py module on that table's
   fixed list that derives from an estimator or fitted-state base;
4. everything else is refused, with a reason.

Steps 1-2, and whether step 3 can apply, are decided by the strings alone. Only then is
a module imported, and only a module on the fixed list: a file cannot make devpersist
import a module (``sklearnex.__main__``, a test module) by naming it.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from . import _rules
from ._exceptions import IntegrityError, UnsafeTrustError, UntrustedTypeError

Name = tuple[str, str]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*\Z")
_PLAIN_NAME_RE = re.compile(rf"{_IDENT}\Z")


def check_dtype(dtype: Any) -> None:
    """Refuse a dtype whose state a file could have rewritten (``dtype(...)`` + BUILD).

    The dtype must be what numpy builds from its own public description: no object
    fields (a field over file bytes is a pointer numpy would follow), fields and
    sub-arrays inside the item, and state (flags, size, alignment, metadata) equal to
    the canonical dtype's.
    """
    import numpy as np

    if not isinstance(dtype, np.dtype):
        raise IntegrityError("the object graph has a malformed numpy dtype")
    try:
        canonical = _canonical_dtype(dtype, top=True)
        same = canonical == dtype and canonical.__reduce__()[2] == dtype.__reduce__()[2]
    except IntegrityError:
        raise
    except Exception:
        same = False
    if not same:
        raise IntegrityError(
            "the object graph holds a numpy dtype whose internal state does not describe "
            "a dtype numpy would build (rewritten fields, offsets, size or flags)"
        )


def _canonical_dtype(dtype: Any, top: bool = False) -> Any:
    import numpy as np

    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((_canonical_dtype(base), shape))
    if dtype.names is not None:
        names, formats, offsets, titles = [], [], [], []
        for name in dtype.names:
            field = dtype.fields[name]
            names.append(name)
            formats.append(_canonical_dtype(field[0]))
            offsets.append(field[1])
            titles.append(field[2] if len(field) > 2 else None)
        spec: dict[str, Any] = {
            "names": names, "formats": formats, "offsets": offsets, "itemsize": dtype.itemsize
        }  # fmt: skip
        if any(t is not None for t in titles):
            spec["titles"] = titles
        return np.dtype(spec, align=bool(dtype.isalignedstruct))  # type: ignore[call-overload]
    if dtype.kind == "O" and not top:
        raise IntegrityError("the object graph holds a numpy dtype with an object field")
    return np.dtype(dtype.str)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar reconstructor, restricted to plain bytes of a non-object dtype."""
    import numpy as np

    check_dtype(dtype)  # the stream may have rewritten it before this use
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UntrustedTypeError("numpy scalar with an object dtype or non-bytes payload")
    if len(data) != dtype.itemsize:
        raise UntrustedTypeError("numpy scalar payload does not match its dtype size")
    return np._core.multiarray.scalar(dtype, data)  # type: ignore[attr-defined]


def _numpy_dtype(obj: Any, align: Any = False, copy: Any = True) -> Any:
    """``numpy.dtype`` as pickle calls it, always returning a fresh copy: the stream may
    then BUILD it, which must never reach numpy's shared builtin dtypes."""
    import numpy as np

    if not isinstance(obj, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise IntegrityError("the object graph has a malformed numpy dtype")
    return np.dtype(obj, align, True)


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
# builtin container types as references (``defaultdict(set)``, ``dtype=tuple``); range
# objects are lazy, so ``range(...)`` may be called.
_BUILTIN_TYPE_REFS = ["list", "set", "frozenset", "tuple", "dict", "map", "zip", "reversed"]
_add("builtins", [*_BUILTIN_TYPE_REFS, "range"])
# pure builtin functions as references (``FunctionTransformer(func=len)``, a key
# function): they compute on what they are given and reach nothing else. References
# only: the file cannot call them (``sum`` over a huge range would cost time).
_BUILTIN_FUNCTION_REFS = ["len", "abs", "min", "max", "sum", "round", "sorted", "any", "all"]
_add("builtins", _BUILTIN_FUNCTION_REFS)
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
    "object_",
    "matrix",
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
        "_zoneinfo",
        "_matrix",
    ],
)
_add("zoneinfo", ["ZoneInfo"])

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

# scikit-learn: KD/ball trees and distance metrics rebuild through ``newObj`` (also in
# the derived table; listed here for their validators and uses).
_add("sklearn.neighbors._kd_tree", ["newObj"])
_add("sklearn.neighbors._ball_tree", ["newObj"])
_add("sklearn.metrics._dist_metrics", ["newObj"])

RULE_PACKAGES = _rules.RULE_PACKAGES


# --------------------------------------------------------------------------- uses
# What the stream may do with each approved global. The audit records which globals
# are called (REDUCE, NEWOBJ) and which results are then modified (BUILD, SETITEM,
# APPEND): a modified object must be fresh, or the file could rewrite shared state
# (numpy's namespace, scikit-learn's metric tables) that outlives the load.
REF, CALL, FRESH = "ref", "call", "fresh"
#: Types that may only be referenced (``dtype=float``): calling them on file data could
#: allocate without bound (``numpy.void(2**31)``) or expand shared references (``str``).
REFERENCE_ONLY = (
    {("builtins", n) for n in ("bool", "float", "int", "object", "str", *_BUILTIN_TYPE_REFS)}
    | {("builtins", n) for n in _BUILTIN_FUNCTION_REFS}
    | {("zoneinfo", "ZoneInfo")}
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
    ("devpersist._graph", "_zoneinfo"): CALL,
    ("devpersist._graph", "_matrix"): CALL,
    ("builtins", "range"): CALL,
}


#: The hand-made entries that are functions (references): every other entry of
#: :data:`EXACT` without a use above is a class (a test checks both).
EXACT_REFERENCES = frozenset(
    {("numpy", n) for n in _NUMPY_FUNCTIONS}
    | {("scipy._lib.array_api_compat.numpy._aliases", "asarray")}
    | {(f"onedal.{b}", "from_table") for b in ("_onedal_py_host", "_onedal_py_dpc")}
)
_KIND_USE = {"class": FRESH, "reconstructor": FRESH, "function": REF, "ufunc": REF}


def use_of(name: Name, obj: Any, trusted: frozenset[str]) -> str:
    """How the stream may use an approved global: REF, CALL or FRESH."""
    kind = USES.get(name)
    if kind is not None:
        return kind
    if name in REFERENCE_ONLY:
        return REF
    if dotted(name) in trusted:
        return FRESH  # the caller vouches for it
    if name in EXACT:  # hand-made entries not listed above are classes, or references
        return REF if name in EXACT_REFERENCES else FRESH
    derived_kind = _rules.derived_kind(*name)
    if derived_kind is not None:
        return _KIND_USE[derived_kind]
    return FRESH if isinstance(obj, type) else REF


def dotted(name: Name) -> str:
    return f"{name[0]}.{name[1]}"


# --------------------------------------------------------------------------- trusted=


class DangerouslyTrusted(frozenset[str]):
    """Names trusted although they are on the never list (see :func:`dangerously_trust`)."""


def dangerously_trust(*names: Any) -> DangerouslyTrusted:
    """Mark names for ``trusted=`` that are on the never list (they run code).

    ``load(f, trusted=[dangerously_trust("os.getcwd")])``: a load admits names on the
    never list (``eval``, ``os.*``, ``subprocess.*``...) only through this function, so
    a careless ``trusted=get_untrusted_types(f)`` cannot hand a file code execution.
    Only use it for a file whose author you trust as much as code you run.
    """
    return DangerouslyTrusted(_trusted_names(names, dangerous=True))


def _trusted_names(items: Iterable[Any], dangerous: bool) -> set[str]:
    out: set[str] = set()
    for item in items:
        if isinstance(item, DangerouslyTrusted):
            out |= item
            continue
        if isinstance(item, str):
            name = item
        elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(p, str) for p in item):
            name = dotted(item)
        elif hasattr(item, "__module__") and hasattr(item, "__qualname__"):
            name = f"{item.__module__}.{item.__qualname__}"
        else:
            raise TypeError(
                f"trusted entries are 'module.qualname' names, types or functions, not {item!r}"
            )
        why = None if dangerous else _rules.never(name)
        if why is not None:
            raise UnsafeTrustError(
                f"trusted= names {name!r}, which is on the never list ({why}); pass "
                f"devpersist.dangerously_trust({name!r}) if you really mean to let the "
                "file run it",
                name=name,
            )
        out.add(name)
    return out


def normalize_trusted(trusted: Any) -> frozenset[str]:
    """``trusted`` entries as ``"module.qualname"`` strings (types and functions too).

    Names on the never list raise :class:`UnsafeTrustError` unless they come through
    :func:`dangerously_trust`.
    """
    if trusted is None:
        return frozenset()
    if isinstance(trusted, DangerouslyTrusted):
        return frozenset(trusted)
    if isinstance(trusted, bool) or not isinstance(trusted, (str, type, Iterable)):
        raise TypeError(
            "trusted= takes a list of 'module.qualname' names, types or functions, not "
            f"{trusted!r}: there is no trust-everything switch"
        )
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    return frozenset(_trusted_names(trusted, dangerous=False))


def _resolve_trusted(module: str, name: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------- verdicts


def _well_formed(name: Any) -> bool:
    return (
        isinstance(name, tuple)
        and len(name) == 2
        and all(isinstance(p, str) for p in name)
        and _MODULE_RE.match(name[0]) is not None
        and _MODULE_RE.match(name[1]) is not None
    )


def _label(name: Any) -> str:
    return dotted(name) if _well_formed(name) else repr(name)


def _reason(key: str, **fields: str) -> str:
    return _rules.REASONS[key].format(**fields)


def _rule_candidate(module: str, name: str) -> bool:
    """A rule by kind may apply (a class of a library module, or a ufunc re-exported by a
    module on the list: pickle names a ufunc after the first module it finds it in):
    judged from the strings alone."""
    return (
        _rules.on_fixed_list(module)
        and _PLAIN_NAME_RE.match(name) is not None
        and not name.startswith("__")
    )


_string_verdicts: dict[Any, str | None] = {}


def _string_verdict(name: Any, trusted: frozenset[str]) -> str | None:
    """Why ``name`` is refused by its strings alone (nothing imported), or None."""
    if not _well_formed(name):
        return _reason("malformed")
    if dotted(name) in trusted:
        return None
    try:
        return _string_verdicts[name]
    except KeyError:
        why = _string_verdicts[name] = _untrusted_string_verdict(name)
        if len(_string_verdicts) > 65536:  # file-chosen names: keep the cache bounded
            _string_verdicts.clear()
        return why


def _untrusted_string_verdict(name: Name) -> str | None:
    module, qualname = name
    label = dotted(name)
    if name in EXACT:
        return None
    why = _rules.never(label)
    if why is not None:
        return _reason("never", why=why)
    if _rules.module_forbidden(module):
        return _reason("not_listed")
    if _rules.derived_kind(module, qualname) is not None or _rule_candidate(module, qualname):
        return None
    if _rules.on_fixed_list(module) or module.partition(".")[0] not in (
        *_rules.RULE_PACKAGES,
        "onedal",
    ):
        return _reason("not_listed")
    return _reason("module_not_listed", made_from=_rules.made_from())


_verdicts: dict[Name, tuple[Any, str | None]] = {}
_NOT_FOUND: Any = object()


def _import_listed(module: str) -> Any:
    """Import a module on the fixed list (never anything else)."""
    if not (_rules.on_fixed_list(module) or any(m == module for m, _ in EXACT)):
        raise AssertionError(f"{module} is not on the fixed list")  # pragma: no cover
    return importlib.import_module(module)


def _is_ufunc(obj: Any) -> bool:
    """A numpy ufunc, or scipy.special's array API wrapper of one (it only picks the
    input's namespace and calls that library's version of the same function)."""
    ufunc = getattr(sys.modules.get("numpy"), "ufunc", None)
    if ufunc is None:
        return False
    if isinstance(obj, ufunc):
        return True
    wrapped = getattr(obj, "__wrapped__", None)
    code = getattr(obj, "__code__", None)
    return (
        isinstance(wrapped, ufunc)
        and wrapped.__name__ == getattr(obj, "__name__", None)
        and code is not None
        and code.co_filename.replace("\\", "/").endswith(
            "scipy/special/_support_alternative_backends.py"
        )
    )


def _library_verdict(module: str, name: str) -> tuple[Any, str | None]:
    """Import the (listed) module, then check the object: (object, None) or (None, why)."""
    try:
        mod = _import_listed(module)
    except Exception:  # a listed module that fails to import here is not admitted
        return None, _reason("not_importable")
    obj = getattr(mod, name, _NOT_FOUND)
    if obj is _NOT_FOUND:
        return None, _reason("missing")
    kind = _rules.derived_kind(module, name)
    if kind is None and _is_ufunc(obj):
        return obj, None
    if kind == "class" or (kind is None and isinstance(obj, type)):
        own = getattr(obj, "__module__", None)
        if not isinstance(obj, type) or not isinstance(own, str):
            return None, _reason("not_estimator")
        if kind is None:  # the class rule: a class of a listed module, of a listed base
            if (
                module.partition(".")[0] not in _rules.RULE_PACKAGES
                or not _rules.on_fixed_list(own)
                or not issubclass(obj, _rules.bases())
            ):
                return None, _reason("not_estimator")
        return obj, None
    if kind == "ufunc":
        return (obj, None) if _is_ufunc(obj) else (None, _reason("missing"))
    if kind in ("function", "reconstructor") and callable(obj):
        return obj, None
    return None, _reason("not_estimator")


def verdict(
    name: Name, trusted: frozenset[str] = frozenset(), imports: bool = True
) -> tuple[Any, str | None]:
    """``(resolver, None)`` for an admitted name, ``(None, reason)`` for a refused one.

    Only modules on the fixed list (or named in ``trusted``) are imported, and only after
    the strings passed; verdicts on library names are cached for the process. With
    ``imports=False`` the derived table is believed without importing its modules (only
    the class rule, for a name the table lacks, imports the module it needs); the
    resolver is then None.
    """
    why = _string_verdict(name, trusted)
    if why is not None:
        return None, why
    resolver = EXACT.get(name)
    if resolver is not None:
        return resolver, None
    if dotted(name) in trusted:
        return (lambda: _resolve_trusted(*name)), None
    if not imports and _rules.derived_kind(*name) is not None:
        return None, None
    cached = _verdicts.get(name)
    if cached is None:
        if len(_verdicts) > 65536:  # file-chosen names: keep the cache bounded
            _verdicts.clear()
        cached = _verdicts[name] = _library_verdict(*name)
    obj, why = cached
    return (None, why) if why is not None else (_const(obj), None)


def refusals(names: Iterable[Any], trusted: frozenset[str] = frozenset()) -> dict[str, str]:
    """Each refused name (``"module.qualname"``) with the reason."""
    out = {}
    for name in names:
        _, why = verdict(name, trusted)
        if why is not None:
            out[_label(name)] = why
    return dict(sorted(out.items()))


def untrusted(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> list[str]:
    """The names outside the allowlist, as sorted ``"module.qualname"`` strings."""
    return list(refusals(names, trusted))


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
    verdicts = {n: verdict(n, trusted) for n in names}
    bad = {_label(n): why for n, (_, why) in verdicts.items() if why is not None}
    if bad:
        raise refused(bad)
    return {n: resolver() for n, (resolver, _) in verdicts.items()}


def refused(bad: dict[str, str], what: str = "refers to") -> UntrustedTypeError:
    """The error for refused names, each with its reason (file strings escaped)."""
    lines = "".join(f"\n  - {name!a}: {why}" for name, why in sorted(bad.items()))
    never = [n for n, why in bad.items() if why.startswith("on the never list")]
    advice = ("Names on the never list cannot be trusted. " if never else "") + (
        "Check each other name yourself before passing it in trusted=[...]; "
        "docs/security.md says what the allowlist admits and why."
    )
    return UntrustedTypeError(
        f"the file {what} names the allowlist does not admit:{lines}\nNothing was loaded. "
        + advice,
        untrusted=sorted(bad),
        reasons=dict(sorted(bad.items())),
    )


def prescreen(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> None:
    """Reject, by the strings alone, names that no rule could allow (imports nothing)."""
    bad = {}
    for name in names:
        why = _string_verdict(name, trusted)
        if why is not None:
            bad[_label(name)] = why
    if bad:
        raise refused(bad)


def use_refusals(
    called: Iterable[Any],
    modified: Iterable[Any],
    approved: dict[Name, Any],
    trusted: frozenset[str] = frozenset(),
    called_results: Iterable[Any] = (),
) -> dict[str, str]:
    """Approved names the stream uses in ways their rule forbids, with the reason."""
    bad: dict[str, str] = {}
    for origin in sorted(called_results, key=str):
        bad[_label(origin)] = _reason("called_result")
    for origin in sorted(called, key=str):
        if origin in approved and use_of(origin, approved[origin], trusted) == REF:
            why = "could allocate without bound or run what it names"
            bad[_label(origin)] = _reason("called_reference", why=why)
    for origin in sorted(modified, key=str):
        if origin in approved and use_of(origin, approved[origin], trusted) != FRESH:
            bad.setdefault(_label(origin), _reason("modified"))
    return bad


def check_uses(called: Iterable[Any], modified: Iterable[Any], approved: dict[Name, Any],
               trusted: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Every called global must be a constructor, every modified result a fresh object."""
    bad = use_refusals(called, modified, approved, trusted)
    if bad:
        raise refused(bad, what="uses")


_audit_refusals: dict[Any, dict[str, str]] = {}


def audit_refusals(result: Any, trusted: frozenset[str] = frozenset()) -> dict[str, str]:
    """Everything :func:`devpersist.load` would refuse in an audited stream, with reasons:
    names, then the uses of the admitted ones. Imports nothing for names in the tables
    (only the class rule imports a module, from the fixed list). Cached: saving the same
    kind of model again costs a dict lookup."""
    key = (
        frozenset(result.names),
        frozenset(result.called),
        frozenset(result.modified),
        frozenset(result.called_results),
        trusted,
    )
    found = _audit_refusals.get(key)
    if found is None:
        found = _audit_refusals_of(result, trusted)
        if len(_audit_refusals) < 256:
            _audit_refusals[key] = found
    return dict(found)


def _audit_refusals_of(result: Any, trusted: frozenset[str]) -> dict[str, str]:
    bad: dict[str, str] = {}
    approved: dict[Name, Any] = {}
    for name in result.names:
        resolver, why = verdict(name, trusted, imports=False)
        if why is not None:
            bad[_label(name)] = why
        elif name in EXACT or dotted(name) in trusted or resolver is None:
            approved[name] = None  # its use is known without the object
        else:
            approved[name] = resolver()
    bad.update(
        use_refusals(result.called, result.modified, approved, trusted, result.called_results)
    )
    return dict(sorted(bad.items()))
