"""Save: pickle protocol 5 with the arrays out of band and a few types rewritten.

First step of a dump (**pickle** -> describe arrays -> write the container). pickle's
documented hooks do the work: ``persistent_id`` sends every array an array handler owns
out of band (the stream keeps only its index), and ``reducer_override`` hands the few
objects pickle would store through code the allowlist must not admit to the save-side
reducer the rule table (:data:`devpersist._rule_table.REDUCERS`) names for their type;
arrays no handler can save are refused with the reason.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Callable
from typing import Any

from ._exceptions import ResourceLimitError, UnsupportedObjectError
from ._opcodes import precheck
from ._reconstructors import WIRE_MODULE, reduce_builtin_function
from ._rule_table import ADMITTED, REDUCERS
from .arrays import ArrayHandler, foreign_array, handler_for

PROTOCOL = 5


class ArrayRef:
    """An array found while pickling, with its handler and the object being reduced
    when pickle reached it (to name arrays that ``__getstate__`` builds afresh)."""

    __slots__ = ("handler", "obj", "owner")

    def __init__(self, obj: Any, handler: ArrayHandler, owner: Any) -> None:
        self.obj = obj
        self.handler = handler
        self.owner = owner


_MISSING: Any = object()


class _Pickler(pickle.Pickler):
    def __init__(self, f: io.BytesIO) -> None:
        super().__init__(f, protocol=PROTOCOL)
        self.refs: list[ArrayRef] = []
        self._index: dict[int, int] = {}
        self._owner: Any = None

    def persistent_id(self, obj: Any) -> int | None:
        # called for every object pickled, ints and strings too: keep it lean
        handler = handler_for(type(obj))  # cached per type by the registry
        if handler is None:
            return None
        try:
            if not handler.stores(obj):
                return None
        except UnsupportedObjectError as exc:
            exc.culprit = obj  # type: ignore[attr-defined]  # dump_graph names its path
            raise
        key = id(obj)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.refs)
            self.refs.append(ArrayRef(obj, handler, self._owner))  # keeps obj alive
        return index

    def reducer_override(self, obj: Any) -> Any:
        # called for every non-builtin object: one dict lookup for the common case
        tp = type(obj)
        if not isinstance(obj, type):  # classes are pickled just before their instances
            self._owner = obj
        special = _special.get(tp, _MISSING)
        if special is _MISSING:
            special = _special[tp] = _classify(tp)
        if special is None:
            return NotImplemented
        return special(obj)


def _refuse(reason: str) -> Callable[[Any], Any]:
    """A reducer for arrays no handler can save: pickle would write a file that fails
    to load (device storage, globals outside the allowlist)."""

    def reduce(obj: Any) -> Any:
        tp = type(obj)
        exc = UnsupportedObjectError(reason, type_name=f"{tp.__module__}.{tp.__qualname__}")
        exc.culprit = obj  # type: ignore[attr-defined]
        raise exc

    return reduce


_reduce_device = ADMITTED[(WIRE_MODULE, "_device")].reduce


def _classify(tp: type) -> Callable[[Any], Any] | None:
    """The special reducer for objects of type ``tp``, or None (pickle's default)."""
    module = getattr(tp, "__module__", "") or ""
    reducer = REDUCERS.get(f"{module}.{getattr(tp, '__qualname__', '')}")
    if reducer is not None:
        return reducer
    if module == "builtins" and tp.__qualname__ == "builtin_function_or_method":
        return reduce_builtin_function  # a oneDAL function saved as its global name
    if module.startswith("numpy"):
        return None
    if module.partition(".")[0] in ("torch", "array_api_strict", "cupy"):
        from ._namespaces import is_device_type

        if is_device_type(tp):
            return _reduce_device
    reason = foreign_array(tp)
    if reason is not None:
        return _refuse(reason)
    return None


_special: dict[type, Callable[[Any], Any] | None] = {}


def dump_graph(obj: Any) -> tuple[bytes, list[ArrayRef]]:
    """Pickle ``obj`` with its arrays out of band; name the culprit if it cannot.

    Returns
    -------
    tuple
        The stream and the arrays it refers to, in index order.

    Raises
    ------
    UnsupportedObjectError
        Something in ``obj`` cannot be saved (its attribute path is named).
    """
    buf = io.BytesIO()
    pickler = _Pickler(buf)
    try:
        with warnings.catch_warnings():
            # pickle finds a ufunc's module by scanning sys.modules (numpy's reducer gives
            # only its name); touching numpy's deprecated ``numpy.core`` alias on the way
            # warns, about nothing the caller did (numpy/numpy#26310 renamed the module)
            warnings.filterwarnings(
                "ignore", message=r"numpy\.core is deprecated", category=DeprecationWarning
            )
            pickler.dump(obj)
    except UnsupportedObjectError as exc:
        if exc.path:
            raise
        culprit = getattr(exc, "culprit", _MISSING)
        if culprit is not _MISSING:
            raise _named(obj, culprit, str(exc)) from exc
        raise _unsupported(obj, exc) from exc
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        raise _unsupported(obj, exc) from exc
    data = buf.getvalue()
    try:
        precheck(data)  # a file no reader would accept is not written
    except ResourceLimitError as exc:
        raise UnsupportedObjectError(
            f"this object's graph breaks a limit every reader enforces ({exc}); nothing was written"
        ) from exc
    return data, pickler.refs


def _named(root: Any, culprit: Any, reason: str) -> UnsupportedObjectError:
    from ._walk import array_paths

    path = array_paths(root, [culprit])[0] or f"an object inside {type(root).__name__}"
    type_name = f"{type(culprit).__module__}.{type(culprit).__qualname__}"
    return UnsupportedObjectError(
        f"cannot save {path} (a {type_name}): {reason}. Nothing was written.",
        path=path,
        type_name=type_name,
    )


def _unsupported(root: Any, exc: BaseException) -> UnsupportedObjectError:
    from ._walk import find_unpicklable

    found = find_unpicklable(root)
    if found is None:
        return UnsupportedObjectError(f"cannot save this object: {exc}")
    path, culprit, reason = found
    type_name = f"{type(culprit).__module__}.{type(culprit).__qualname__}"
    return UnsupportedObjectError(
        f"cannot save {path} (a {type_name}): {reason}. Nothing was written.",
        path=path,
        type_name=type_name,
    )
