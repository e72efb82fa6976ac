"""The hand-made allowlist as data: one :class:`Rule` per special global name.

A rule says, for one ``(module, qualname)`` a file may name:

* how it resolves: ``import`` (the library's own object, imported on first use),
  ``devpersist`` (a function of devpersist stands in for it: a checking substitute of
  :mod:`devpersist._checked`, or one of devpersist's reconstructors) or ``derived`` (the
  name is judged by the derived table, :mod:`devpersist._rules`; the rule only adds a
  check);
* its use: ``ref`` (may only be referenced), ``call`` (may be called; its result may not
  be modified) or ``fresh`` (may be called and its new result filled in by BUILD,
  SETITEM, APPEND);
* its check (:mod:`devpersist._validate`): run on every object the name built, once the
  whole graph is built, all objects of a rule in one batch;
* for devpersist's reconstructors, the types the pickler writes through it and the
  save-side reducer that does so (:mod:`devpersist._reconstructors`);
* why it is trusted.

The engine that reads the table is :mod:`devpersist._safety` (verdicts, uses, refusals);
the pickler reads the save side, the safe unpickler the checks, ``docs/security.md``
shows :func:`markdown` (a test keeps the two equal).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from . import _checked as checked
from . import _reconstructors as rec
from . import _validate as validate

Name = tuple[str, str]
Use = Literal["ref", "call", "fresh"]
REF: Use = "ref"
CALL: Use = "call"
FRESH: Use = "fresh"
How = Literal["import", "devpersist", "derived"]
#: A batch check of the objects one name built ("result": what calling it returned;
#: "instance": what instantiating the class gave, NEWOBJ then BUILD).
Check = Callable[[Sequence[Any]], None]


@dataclass(frozen=True)
class Rule:
    """One global name a file may use, and everything devpersist knows about it."""

    module: str
    name: str
    use: Use | None  # None for a "derived" rule: the derived table's kind decides
    why: str
    how: How = "import"
    function: Callable[..., Any] | None = None  # stands in for the name (how="devpersist")
    source: str | None = None  # module to take the object from, when not ``module``
    check: Check | None = None
    check_on: Literal["result", "instance"] = "result"
    writes: tuple[str, ...] = ()  # "module.qualname" of the types saved through it
    reduce: Callable[[Any], Any] | None = None  # the save-side reducer of those types
    #: the function takes the load's placement first (the safe unpickler binds it), so
    #: what it rebuilds follows the arrays (``namespace="numpy"``, ``device=...``)
    placed: bool = False

    @property
    def key(self) -> Name:
        return (self.module, self.name)

    @property
    def admits(self) -> bool:
        """Whether the rule itself admits the name (else the derived table decides)."""
        return self.how != "derived"

    def resolve(self) -> Any:
        """The object a load hands out for the name (imports its module if needed)."""
        if self.function is not None:
            return self.function
        if self.how != "import":
            raise LookupError(f"{self.module}.{self.name} is resolved by the derived table")
        return getattr(importlib.import_module(self.source or self.module), self.name)


_rules: list[Rule] = []


def _group(module: str, names: Iterable[str], use: Use, why: str, **kw: Any) -> None:
    _rules.extend(Rule(module, n, use, why, **kw) for n in names)


def _substitute(
    module: str, name: str, use: Use, function: Callable[..., Any], why: str, **kw: Any
) -> None:
    _rules.append(Rule(module, name, use, why, how="devpersist", function=function, **kw))


# fmt: off
# --------------------------------------------------------------------------- builtins

_ALLOCATE = "calling it on file data could allocate without bound or expand shared objects"
_group("builtins", ["bool", "float", "int", "object", "str"], REF,
       f"a scalar type used as a parameter (dtype=float); reference only: {_ALLOCATE}")
_group("builtins", ["complex", "slice"], FRESH, "a plain value type")
_group("builtins", ["list", "set", "frozenset", "tuple", "dict", "map", "zip", "reversed"], REF,
       "a container type as a reference (defaultdict(set), dtype=tuple); containers have "
       "their own opcodes")
_group("builtins", ["range"], CALL, "lazy: calling it allocates nothing")
_group("builtins", ["len", "abs", "min", "max", "sum", "round", "sorted", "any", "all"], REF,
       "a pure builtin function kept as a value (a key function, FunctionTransformer(len)); "
       "reference only: sum over a huge range would cost time")
_group("collections", ["OrderedDict", "defaultdict", "deque", "Counter"], FRESH,
       "a container class: its constructor stores what it is given")
_group("datetime", ["date", "datetime", "time", "timedelta", "timezone"], FRESH,
       "a plain value class")
_group("zoneinfo", ["ZoneInfo"], REF,
       "a type reference; a zone itself is saved through devpersist._graph._zoneinfo, "
       "which accepts only a plain relative zone name")

# --------------------------------------------------------------------------- numpy

#: numpy scalar types and abstract types (numpy.dtype, below, has a rule of its own).
NUMPY_TYPES = (
    "bool", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "intc", "uintc", "intp", "uintp", "longlong", "ulonglong", "float16",
    "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble", "str_",
    "bytes_", "datetime64", "timedelta64", "void", "object_", "matrix", "number",
    "integer", "floating", "signedinteger", "unsignedinteger", "generic",
)
NUMPY_FUNCTIONS = (
    "mean", "median", "average", "sum", "prod", "min", "max", "amin", "amax", "std", "var",
    "nanmean", "nanmedian", "nansum", "nanmin", "nanmax", "nanstd", "nanvar", "log",
    "log1p", "exp", "expm1", "sqrt", "abs", "absolute", "square", "sign", "tanh",
    "arcsinh", "clip", "round", "floor", "ceil", "percentile", "quantile",
)
NUMPY_DTYPE_CLASSES = tuple(
    f"{t}DType"
    for t in (
        "Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
        "Float16", "Float32", "Float64", "LongDouble", "Complex64", "Complex128",
        "CLongDouble", "Str", "Bytes", "DateTime64", "TimeDelta64", "Void",
    )
)
_group("numpy", NUMPY_TYPES, REF,
       f"a numpy scalar or abstract type used as a parameter; reference only: {_ALLOCATE} "
       "(numpy.void(2**31))")
_group("numpy", NUMPY_FUNCTIONS, REF,
       "a pure numpy reduction or element-wise function used as a parameter; reference only")
_group("numpy.dtypes", NUMPY_DTYPE_CLASSES, REF, "a numpy dtype class, as a reference")
_substitute("numpy", "dtype", FRESH, checked.numpy_dtype,
            "numpy's dtype constructor, returning a fresh copy; pickle BUILDs structured and "
            "non-native dtypes, so the result is checked to be a dtype numpy would build",
            check=validate.dtypes)
for _module in ("numpy._core.multiarray", "numpy.core.multiarray"):
    _substitute(_module, "scalar", CALL, checked.numpy_scalar,
                "numpy's scalar reconstructor, restricted to plain bytes of a checked, "
                "non-object dtype")
_BIT = "a numpy random generator class; its constructor only seeds it"
for _bg in checked.BIT_GENERATORS:
    _group("numpy.random", [_bg], FRESH, _BIT)
    _group(f"numpy.random._{_bg.lower()}", [_bg], FRESH, _BIT, source="numpy.random")
_group("numpy.random._pcg64", ["PCG64DXSM"], FRESH, _BIT, source="numpy.random")
for _module, _names in {
    "numpy.random": ["RandomState", "Generator", "SeedSequence"],
    "numpy.random.mtrand": ["RandomState"],
    "numpy.random._generator": ["Generator"],
    "numpy.random.bit_generator": ["SeedSequence"],
}.items():
    _group(_module, _names, FRESH, _BIT, source="numpy.random")
_group("numpy.random.bit_generator", ["__pyx_unpickle_SeedSequence"], FRESH,
       "Cython's reconstructor of SeedSequence: type-checks each state field")
_CTOR = ("numpy's random-state reconstructor, restricted to the listed bit generators "
         "(the constructor numpy also passes is never called)")
for _name, _function in (("__bit_generator_ctor", checked.bit_generator_ctor),
                         ("__randomstate_ctor", checked.randomstate_ctor),
                         ("__generator_ctor", checked.generator_ctor)):
    _substitute("numpy.random._pickle", _name, FRESH, _function, _CTOR)

# --------------------------------------------------------------------------- scipy

for _fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil"):
    _group(f"scipy.sparse._{_fmt}", [f"{_fmt}_matrix", f"{_fmt}_array"], FRESH,
           "a scipy sparse container class")
_group("scipy.interpolate._bsplines", ["BSpline"], FRESH,
       "the B-spline object SplineTransformer keeps")
_group("scipy._lib.array_api_compat.numpy._aliases", ["asarray"], REF,
       "BSpline keeps its namespace's asarray: pure array construction, as a reference")

# --------------------------------------------------------------------------- devpersist

_OWN = "devpersist's own reconstructor: checks its arguments"
_WIRE = rec.WIRE_MODULE
_substitute(_WIRE, "_object_array", CALL, rec.object_array, _OWN,
            writes=("numpy.ndarray", "numpy.memmap"), reduce=rec.reduce_numpy_array)
_substitute(_WIRE, "_masked_array", CALL, rec.masked_array, _OWN,
            writes=("numpy.ma.MaskedArray",), reduce=rec.reduce_masked_array)
_substitute(_WIRE, "_matrix", CALL, rec.matrix, _OWN,
            writes=("numpy.matrix",), reduce=rec.reduce_matrix)
_substitute(_WIRE, "_namespace_module", CALL, rec.namespace_module, _OWN,
            writes=("builtins.module",), reduce=rec.reduce_module, placed=True)
_substitute(_WIRE, "_device", CALL, rec.device, _OWN, reduce=rec.reduce_device, placed=True)
_substitute(_WIRE, "_onedal_return_type", CALL, rec.onedal_return_type, _OWN,
            writes=("builtins.function",), reduce=rec.reduce_function)
_substitute(_WIRE, "_torch_size", CALL, rec.torch_size, _OWN,
            writes=("torch.Size",), reduce=rec.reduce_torch_size, placed=True)
_substitute(_WIRE, "_dtype", CALL, rec.dtype, _OWN,
            writes=("torch.dtype",), reduce=rec.reduce_torch_dtype, placed=True)
_substitute(_WIRE, "_zoneinfo", CALL, rec.zoneinfo, _OWN,
            writes=("zoneinfo.ZoneInfo",), reduce=rec.reduce_zoneinfo)

# --------------------------------------------------------------------------- oneDAL

# scikit-learn-intelex's estimators follow the class rule (module sklearnex); oneDAL's
# Python estimators and the pybind11 model objects they hold are listed one by one.
_ONEDAL = "a oneDAL Python estimator: its constructor only stores what it is given"
_NATIVE = ("a oneDAL model object: its state is a oneDAL binary archive parsed by native "
           "code (the checksums guarantee it is the archive that was saved)")
for _module, _names in {
    "onedal.linear_model.linear_model": ["LinearRegression", "Ridge"],
    "onedal.linear_model.incremental_linear_model": [
        "IncrementalLinearRegression", "IncrementalRidge",
    ],
    "onedal.linear_model.logistic_regression": ["LogisticRegression"],
    "onedal.decomposition.pca": ["PCA"],
    "onedal.decomposition.incremental_pca": ["IncrementalPCA"],
    "onedal.cluster.kmeans": ["KMeans"],
    "onedal.cluster.dbscan": ["DBSCAN"],
    "onedal.neighbors.neighbors": [
        "KNeighborsClassifier", "KNeighborsRegressor", "NearestNeighbors",
    ],
    "onedal.ensemble.forest": [
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ],
    "onedal.svm.svm": ["SVC", "SVR", "NuSVC", "NuSVR"],
    "onedal.basic_statistics.basic_statistics": ["BasicStatistics"],
    "onedal.basic_statistics.incremental_basic_statistics": ["IncrementalBasicStatistics"],
    "onedal.covariance.covariance": ["EmpiricalCovariance"],
    "onedal.covariance.incremental_covariance": ["IncrementalEmpiricalCovariance"],
}.items():
    _group(_module, _names, FRESH, _ONEDAL)
for _backend in ("onedal._onedal_py_host", "onedal._onedal_py_dpc"):
    for _sub, _names in {
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
    }.items():
        _group(f"{_backend}.{_sub}", _names, FRESH, _NATIVE)
    _group(_backend, ["from_table"], REF,
           "oneDAL's table converter, kept as a value by its estimators; reference only")

# --------------------------------------------------------------------------- scikit-learn

_group("sklearn.neighbors._kd_tree", ["newObj"], FRESH,
       "scikit-learn's reconstructor of a KD tree; the tree's indices are checked",
       check=validate.binary_trees)
_group("sklearn.neighbors._ball_tree", ["newObj"], FRESH,
       "scikit-learn's reconstructor of a ball tree; the tree's indices are checked",
       check=validate.binary_trees)
_group("sklearn.metrics._dist_metrics", ["newObj"], FRESH,
       "scikit-learn's reconstructor of a distance metric")
_rules.append(Rule("sklearn.tree._tree", "Tree", None,
                   "admitted by the derived table; checked: indices in range, no cycles",
                   how="derived", check=validate.trees))
_rules.append(Rule("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor", None,
                   "admitted by the derived table; checked: indices in range, no cycles",
                   how="derived", check=validate.tree_predictors,
                   check_on="instance"))

# fmt: on

#: Every rule, by name (read-only: a file must never be able to change it).
RULES: MappingProxyType[Name, Rule] = MappingProxyType({r.key: r for r in _rules})
if len(RULES) != len(_rules):  # pragma: no cover - a name listed twice
    raise AssertionError("a name has two rules")
#: The rules that admit their name (all but the checks on derived names).
ADMITTED: MappingProxyType[Name, Rule] = MappingProxyType(
    {k: r for k, r in RULES.items() if r.admits}
)
#: Save side: "module.qualname" of a type -> the reducer that writes it.
REDUCERS: MappingProxyType[str, Callable[[Any], Any]] = MappingProxyType(
    {t: r.reduce for r in _rules if r.reduce is not None for t in r.writes}
)
#: Names whose function takes the load's placement as its first argument.
PLACED: frozenset[Name] = frozenset(k for k, r in RULES.items() if r.placed)
#: Checks by name: (what they run on, the batch check).
CHECKS: MappingProxyType[Name, tuple[str, Check]] = MappingProxyType(
    {r.key: (r.check_on, r.check) for r in _rules if r.check is not None}
)


def markdown() -> str:
    """The table as docs/security.md shows it: one row per module, use and reason."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for rule in RULES.values():
        use: str = rule.use or "(derived)"
        rows.setdefault((rule.module, use, rule.why), []).append(rule.name)
    lines = ["| module | names | use | why trusted |", "|---|---|---|---|"]
    for (module, use, why), names in rows.items():
        shown = ", ".join(f"`{n}`" for n in names)
        lines.append(f"| `{module}` | {shown} | {use} | {why} |")
    return "\n".join(lines) + "\n"
