"""The allowlist's data: what the rules admit and refuse, and why (no engine here).

* :func:`derived` -- the names derived from the installed libraries by
  ``python -m devpersist._derive`` and committed as ``_derived_names.json``: per module,
  each name's kind (``class``, ``reconstructor``, ``function``, ``ufunc``). Its modules
  are the *fixed list*: the only modules named by a file that a load may import.
* :data:`BASES` -- the estimator and fitted-state bases of the class rule.
* :data:`NEVER` -- callables that run code, touch the system or allocate on demand: refused
  even in ``trusted=`` unless wrapped in :func:`devpersist.dangerously_trust`.
* :data:`REASONS` -- the reason given for each kind of refusal (:class:`Refusal`).

The hand-made rules (one :class:`~devpersist._rule_table.Rule` per name) are
:mod:`devpersist._rule_table`.

The engine that reads them is :mod:`devpersist._safety`.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PLAIN_NAME_RE = re.compile(rf"{_IDENT}\Z")

#: Module path components that are never on the fixed list (and that the generator never
#: imports): modules that run code when imported (``__main__``), test and build helpers,
#: bundled third-party code, dataset downloaders, experimental switches that patch the
#: library, scikit-learn's callback transport (it opens connections) and sklearnex's
#: global patching.
FORBIDDEN_PARTS = frozenset(
    {
        "__main__",
        "tests",
        "testing",
        "_testing",
        "conftest",
        "_test_common",
        "estimator_checks",
        "externals",
        "datasets",
        "experimental",
        "_build_utils",
        "__check_build",
        "_joblib",
        "parallel",
        "_show_versions",
        "discovery",
        "_repr_html",
        "fixes",
        "_config",
        "callback",
        "_plotting",
        "sphinxext",
        "_dispatcher",
        "glob",
        "benchmarks",
        "_build",
    }
)


def forbidden_part(part: str) -> bool:
    return part in FORBIDDEN_PARTS or part.startswith("test_")


def module_forbidden(module: str) -> bool:
    return any(forbidden_part(p) for p in module.split("."))


#: Packages whose classes the class rule admits when their module is on the fixed list.
RULE_PACKAGES = ("sklearn", "sklearnex", "daal4py")

#: A class under the rule must derive from one of these ("module:qualname"): estimators,
#: and the fitted-state helpers they hold. Their constructors only store what they are
#: given; a class outside them (a callback that connects to an address in its
#: ``__setstate__``, say) is refused even though scikit-learn defines it.
BASES = (
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

#: scikit-learn modules whose functions are admitted as references (metrics, score
#: functions: pure computation on arrays).
FUNCTION_MODULES = (
    "sklearn.metrics",
    "sklearn.feature_selection._univariate_selection",
    "sklearn.feature_selection._mutual_info",
    "sklearn.cluster._kmeans",
)


def is_function(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) or (
        type(obj).__name__ == "cython_function_or_method"
    )


def bases(import_missing: bool = False) -> tuple[type, ...]:
    """The classes of :data:`BASES`. At load time only those whose module is already
    imported are used (a file's class is only checked after its own module, which
    imports its bases, was imported); the generator imports them all."""
    found = []
    for spec in BASES:
        module, _, qualname = spec.partition(":")
        mod = sys.modules.get(module)
        if mod is None and import_missing:
            try:
                mod = importlib.import_module(module)
            except ImportError:  # not in this scikit-learn version
                continue
        obj = getattr(mod, qualname, None)
        if isinstance(obj, type):
            found.append(obj)
    return tuple(found)


# --------------------------------------------------------------------------- never

_CODE = "runs code or commands"
_SYSTEM = "reaches the operating system (files, processes, network)"
_ATTR = "reaches arbitrary attributes, hence any callable"
_ALLOC = "allocates as much memory as its argument asks"
_PICKLE = "loads another, unchecked pickle or model file"
_RAW = "builds arrays from raw bytes, object pointers included"

#: Whole modules never trusted: each exposes callables that run code or reach the system.
NEVER_MODULES: dict[str, str] = {
    "os": _SYSTEM,
    "posix": _SYSTEM,
    "nt": _SYSTEM,
    "sys": _CODE,
    "subprocess": _SYSTEM,
    "_posixsubprocess": _SYSTEM,
    "pty": _SYSTEM,
    "shutil": _SYSTEM,
    "socket": _SYSTEM,
    "_socket": _SYSTEM,
    "ssl": _SYSTEM,
    "asyncio": _SYSTEM,
    "multiprocessing": _SYSTEM,
    "signal": _SYSTEM,
    "webbrowser": _SYSTEM,
    "urllib": _SYSTEM,
    "http": _SYSTEM,
    "ftplib": _SYSTEM,
    "smtplib": _SYSTEM,
    "ctypes": _CODE,
    "_ctypes": _CODE,
    "cffi": _CODE,
    "importlib": _CODE,
    "imp": _CODE,
    "pkgutil": _CODE,
    "runpy": _CODE,
    "code": _CODE,
    "codeop": _CODE,
    "compileall": _CODE,
    "py_compile": _CODE,
    "inspect": _CODE,
    "pdb": _CODE,
    "bdb": _CODE,
    "trace": _CODE,
    "timeit": _CODE,
    "cProfile": _CODE,
    "profile": _CODE,
    "pydoc": _CODE,
    "doctest": _CODE,
    "idlelib": _CODE,
    "threading": _CODE,
    "_thread": _CODE,
    "pickle": _PICKLE,
    "_pickle": _PICKLE,
    "marshal": _PICKLE,
    "shelve": _PICKLE,
    "dill": _PICKLE,
    "cloudpickle": _PICKLE,
    "joblib": _PICKLE,
    "numpy.f2py": _CODE,
    "numpy.testing": _CODE,
    "numpy.distutils": _CODE,
    "distutils": _CODE,
    "setuptools": _CODE,
    "pip": _CODE,
    "io": _SYSTEM,
    "_io": _SYSTEM,
    "pathlib": _SYSTEM,
    "tempfile": _SYSTEM,
    "glob": _SYSTEM,
    "torch.hub": _CODE,
    "torch.jit": _CODE,
    "torch.serialization": _PICKLE,
}

_TYPES_THAT_RUN_CODE = (
    "FunctionType",
    "LambdaType",
    "CodeType",
    "MethodType",
    "ModuleType",
    "BuiltinFunctionType",
    "BuiltinMethodType",
    "new_class",
    "coroutine",
    "CellType",
    "FrameType",
    "GeneratorType",
)

#: Single names never trusted.
NEVER_NAMES: dict[str, str] = {
    **{
        f"builtins.{n}": _CODE
        for n in ("eval", "exec", "compile", "__import__", "breakpoint", "input", "help")
    },
    **{
        f"builtins.{n}": _ATTR
        for n in ("getattr", "setattr", "delattr", "globals", "locals", "vars", "dir", "super")
    },
    "builtins.open": _SYSTEM,
    "builtins.memoryview": _ALLOC,
    "builtins.bytearray": _ALLOC,
    "builtins.bytes": _ALLOC,
    "builtins.type": _CODE,
    "builtins.classmethod": _CODE,
    "builtins.staticmethod": _CODE,
    "builtins.property": _CODE,
    "operator.attrgetter": _ATTR,
    "operator.methodcaller": _ATTR,
    "operator.call": _CODE,
    "_operator.attrgetter": _ATTR,
    "_operator.methodcaller": _ATTR,
    "_operator.call": _CODE,
    "functools.partial": _CODE,
    "functools.reduce": _CODE,
    "_functools.partial": _CODE,
    "_functools.reduce": _CODE,
    **{f"types.{n}": _CODE for n in _TYPES_THAT_RUN_CODE},
    "copyreg._reconstructor": _CODE,
    "copyreg.__newobj__": _CODE,
    "copyreg.__newobj_ex__": _CODE,
    "numpy.load": _PICKLE,
    "numpy.loadtxt": _SYSTEM,
    "numpy.fromfile": _SYSTEM,
    "numpy.memmap": _SYSTEM,
    "numpy.save": _SYSTEM,
    "numpy.lib.npyio.load": _PICKLE,
    "numpy._core.multiarray._reconstruct": _RAW,
    "numpy.core.multiarray._reconstruct": _RAW,
    "numpy.frompyfunc": _CODE,
    "numpy.vectorize": _CODE,
    "torch.load": _PICKLE,
    "scipy.io.loadmat": _SYSTEM,
}


def never(dotted: str) -> str | None:
    """Why ``dotted`` ("module.qualname") must never be trusted, or None."""
    reason = NEVER_NAMES.get(dotted)
    if reason is not None:
        return reason
    if ".__main__." in dotted:  # a package's command-line entry point, not the script's
        return "runs a program when its module is imported (a package's __main__)"
    for module, reason in NEVER_MODULES.items():
        if dotted.startswith(module + "."):
            return reason
    return None


# --------------------------------------------------------------------------- reasons

REASONS = {
    "malformed": "not a well-formed (module, qualname) pair",
    "not_listed": "not in the allowlist",
    "module_not_listed": (
        "its module is not on devpersist's fixed list of modules (derived from {made_from}), "
        "so it is not imported to judge it"
    ),
    "not_importable": "its module is on the fixed list but cannot be imported here",
    "missing": "its module does not define it in the installed version",
    "not_estimator": "not a class deriving from an estimator or fitted-state base",
    "never": "on the never list: {why}",
    "called_reference": "may only be referenced, not called (calling it on file data {why})",
    "called_rule_reference": "may only be referenced, not called (the allowlist's rule: {why})",
    "modified": "what it returns may not be modified by the file (shared or immutable state)",
    "called_result": "the file calls what a call to it returned, which no saved object needs",
}


class Refusal(str):
    """Why a name is refused: the text of :data:`REASONS` ``[kind]``, with its ``kind``
    (callers branch on the kind, never on the wording)."""

    kind: str

    def __new__(cls, kind: str, **fields: str) -> Refusal:
        self = super().__new__(cls, REASONS[kind].format(**fields))
        self.kind = kind
        return self


# --------------------------------------------------------------------------- derived

_DERIVED = Path(__file__).with_name("_derived_names.json")


@functools.cache
def derived() -> dict[str, Any]:
    """The committed table (loaded once, on the first name not in the hand-made table)."""
    data: dict[str, Any] = json.loads(_DERIVED.read_text(encoding="utf-8"))
    return data


def derived_kind(module: str, name: str) -> str | None:
    return derived()["modules"].get(module, {}).get(name)  # type: ignore[no-any-return]


def on_fixed_list(module: str) -> bool:
    return module in derived()["modules"] and not module_forbidden(module)


def made_from() -> str:
    versions = derived()["made_from"]
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v)
