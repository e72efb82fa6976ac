"""The object graph: a pickle protocol 5 stream whose arrays live outside it.

Saving uses pickle's documented hooks: ``persistent_id`` sends every array an array
handler owns out of band (the stream keeps only its index), and ``reducer_override``
rewrites the few objects pickle would store through code we do not want to allow
(object arrays, masked arrays, namespace modules, devices).

Loading is three steps (skops' order):

1. **parse**: the container was validated and the stream's checksum verified;
2. **audit**: :func:`scan` runs the stream through an unpickler whose ``find_class``
   returns an inert stub and records the name, so every global the stream can reach is
   known, and resource limits are checked, while nothing real is imported or built.
   A name computed at run time cannot get past it: ``STACK_GLOBAL`` on anything but a
   literal string fails in the scan;
3. **construct**: :class:`SafeUnpickler` builds the object; its ``find_class`` only
   hands out the objects the audit approved, so even a stream that behaved differently
   the second time could not reach anything else.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

from . import arrays as _arrays
from ._exceptions import (
    FormatError,
    IntegrityError,
    ResourceLimitError,
    UnsupportedObjectError,
    UntrustedTypeError,
)

PROTOCOL = 5
#: Safety limits for the audit: objects built by REDUCE/NEWOBJ/BUILD, nesting depth.
MAX_OBJECTS = 10_000_000
MAX_DEPTH = 500


# --------------------------------------------------------------------------- saving


class ArrayRef:
    """An array found while pickling, with its handler and the object being reduced
    when pickle reached it (to name arrays that ``__getstate__`` builds afresh)."""

    __slots__ = ("handler", "obj", "owner")

    def __init__(self, obj: Any, handler: Any, owner: Any) -> None:
        self.obj = obj
        self.handler = handler
        self.owner = owner


def _object_array(items: list[Any], shape: tuple[int, ...]) -> Any:
    """Rebuild a numpy object array from its elements (C order)."""
    import numpy as np

    if not isinstance(items, list) or not isinstance(shape, tuple):
        raise FormatError("malformed object array")
    count = 1
    for n in shape:
        if not isinstance(n, int) or n < 0:
            raise FormatError("malformed object array shape")
        count *= n
    if count != len(items):
        raise FormatError("object array shape does not match its element count")
    out = np.empty(len(items), dtype=object)
    out[:] = items if items else out
    return out.reshape(shape)


def _masked_array(data: Any, mask: Any, fill_value: Any, hard_mask: bool) -> Any:
    import numpy as np

    return np.ma.MaskedArray(data, mask=mask, fill_value=fill_value, hard_mask=bool(hard_mask))


def _namespace_module(name: str) -> Any:
    """An array-namespace module (e.g. ``PoissonRegressor._base_loss`` keeps one)."""
    from ._namespaces import namespace_module

    return namespace_module(name)


def _device(namespace: str, device: str) -> Any:
    from ._namespaces import device_object

    return device_object(namespace, device)


_MISSING: Any = object()
_by_type = _arrays._registry._by_type


class _Pickler(pickle.Pickler):
    def __init__(self, f: io.BytesIO) -> None:
        super().__init__(f, protocol=PROTOCOL)
        self.refs: list[ArrayRef] = []
        self._index: dict[int, int] = {}
        self._owner: Any = None

    def persistent_id(self, obj: Any) -> Any:
        # called for every object pickled, ints and strings too: keep it lean
        handler = _by_type.get(type(obj), _MISSING)
        if handler is None:
            return None
        if handler is _MISSING:
            handler = _arrays.handler_for(type(obj))
            if handler is None:
                return None
        if not handler.stores(obj):
            return None
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


def _reduce_numpy_array(obj: Any) -> Any:
    if not obj.dtype.hasobject:
        return NotImplemented  # cannot happen: persistent_id took it
    if obj.dtype.fields is not None:
        raise UnsupportedObjectError(
            "structured arrays holding Python objects cannot be saved",
            type_name="numpy.ndarray",
        )
    return _object_array, (list(obj.ravel(order="C")), obj.shape)


def _reduce_masked_array(obj: Any) -> Any:
    import numpy as np

    return _masked_array, (np.asarray(obj.data), np.ma.getmaskarray(obj), obj.fill_value, obj.hardmask)


def _reduce_module(obj: Any) -> Any:
    from ._namespaces import namespace_name

    return _namespace_module, (namespace_name(obj),)


def _reduce_device(obj: Any) -> Any:
    from ._namespaces import device_reduce

    return _device, device_reduce(obj)


def _reduce_builtin_function(obj: Any) -> Any:
    """pybind11 functions (oneDAL's ``from_table``) pickle through ``eval``; save them
    as the module-level name they are instead."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", None)
    if (
        isinstance(module, str)
        and module.startswith("onedal.")
        and isinstance(name, str)
        and getattr(sys.modules.get(module), name, None) is obj
    ):
        return name  # pickle writes the global (module, name)
    return NotImplemented


def _classify(tp: type) -> Callable[[Any], Any] | None:
    """The special reducer for objects of type ``tp``, or None (pickle's default)."""
    module = getattr(tp, "__module__", "") or ""
    if tp is types.ModuleType:
        return _reduce_module
    if tp is types.BuiltinFunctionType:
        return _reduce_builtin_function
    if module.startswith("numpy"):
        import numpy as np

        if tp is np.ndarray or tp is np.memmap:
            return _reduce_numpy_array
        if tp is np.ma.MaskedArray:
            return _reduce_masked_array
        return None
    if module.partition(".")[0] in ("torch", "array_api_strict", "cupy"):
        from ._namespaces import is_device_type

        if is_device_type(tp):
            return _reduce_device
    return None


_special: dict[type, Callable[[Any], Any] | None] = {}


def dump_graph(obj: Any) -> tuple[bytes, list[ArrayRef]]:
    """Pickle ``obj`` with its arrays out of band; name the culprit if it cannot."""
    buf = io.BytesIO()
    pickler = _Pickler(buf)
    try:
        pickler.dump(obj)
    except UnsupportedObjectError as exc:
        if exc.path:
            raise
        raise _unsupported(obj, exc) from exc
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        raise _unsupported(obj, exc) from exc
    return buf.getvalue(), pickler.refs


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


# --------------------------------------------------------------------------- auditing


class _Stub:
    """Stands in for every global during the audit; accepts any construction.

    ``parts`` keeps what was passed in, flat, so the limits check sees the graph.
    """

    __slots__ = ("parts",)

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:  # NEWOBJ calls __new__ only
        self = object.__new__(cls)
        self.parts = [args, kwargs]
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        self.parts.append(state)

    def append(self, item: Any) -> None:
        self.parts.append(item)

    def extend(self, items: Any) -> None:
        self.parts.append(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.parts.append(key)
        self.parts.append(value)


class _AuditUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, n_arrays: int) -> None:
        super().__init__(io.BytesIO(data))
        self.names: set[tuple[str, str]] = set()
        self.pids: set[int] = set()
        self._n_arrays = n_arrays

    def find_class(self, module: str, name: str) -> Any:
        self.names.add((module, name))
        return _Stub

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is not int or not 0 <= pid < self._n_arrays:
            raise FormatError(f"the object graph refers to array {pid!r}, which the file lacks")
        self.pids.add(pid)
        return _Stub()


def scan(data: bytes, n_arrays: int) -> set[tuple[str, str]]:
    """Audit a stream: every global it names, with limits checked; nothing imported."""
    auditor = _AuditUnpickler(data, n_arrays)
    try:
        root = auditor.load()
    except (FormatError, ResourceLimitError):
        raise
    except RecursionError as exc:
        raise ResourceLimitError("the object graph is nested too deeply") from exc
    except MemoryError as exc:
        raise ResourceLimitError("the object graph needs too much memory") from exc
    except Exception as exc:
        raise IntegrityError(f"the object graph is not a valid stream: {exc}") from exc
    if auditor.pids != set(range(n_arrays)):
        raise IntegrityError("the manifest lists arrays the object graph never uses")
    # Every distinct container costs at least one opcode byte, so a stream shorter than
    # the limits cannot exceed them: skip the walk for small graphs.
    if len(data) > MAX_DEPTH:
        _check_shape(root)
    return auditor.names


def _check_shape(root: Any) -> None:
    """Depth and size limits over the audited graph, level by level (no recursion).

    The depth is measured breadth-first from the root, a lower bound of the longest
    chain when references are shared; it bounds nesting built with or without the memo.
    """
    seen: set[int] = set()
    level = [root]
    depth = count = 0
    containers = _CONTAINERS
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise ResourceLimitError(f"the object graph nests deeper than {MAX_DEPTH} levels")
        nxt: list[Any] = []
        for obj in level:
            key = id(obj)
            if key in seen:
                continue
            seen.add(key)
            tp = type(obj)
            if tp is dict:
                nxt += [v for v in obj.values() if type(v) in containers]
                nxt += [k for k in obj if type(k) in containers]
            else:
                nxt += [c for c in (obj.parts if tp is _Stub else obj) if type(c) in containers]
        count += len(level)
        if count > MAX_OBJECTS:
            raise ResourceLimitError(f"the object graph has more than {MAX_OBJECTS} containers")
        level = nxt


_CONTAINERS = frozenset({_Stub, list, tuple, set, frozenset, dict})


# --------------------------------------------------------------------------- constructing


class SafeUnpickler(pickle.Unpickler):
    """Hands out only the approved globals; arrays come from ``arrays`` by index."""

    def __init__(
        self,
        data: bytes,
        approved: dict[tuple[str, str], Any],
        arrays: list[Any],
    ) -> None:
        super().__init__(io.BytesIO(data))
        self._approved = approved
        self._arrays = arrays
        self.built: list[tuple[Callable[[Any], None], Any]] = []

    def find_class(self, module: str, name: str) -> Any:
        try:
            obj = self._approved[(module, name)]
        except KeyError:
            raise UntrustedTypeError(
                f"{module}.{name} was not approved by the audit", [f"{module}.{name}"]
            ) from None
        validator = _VALIDATORS.get((module, name))
        if validator is None:
            return obj
        return _tracking(obj, validator, self.built)

    def persistent_load(self, pid: Any) -> Any:
        return self._arrays[pid]


def _tracking(cls: Any, validator: Callable[[Any], None], built: list[Any]) -> Any:
    def construct(*args: Any) -> Any:
        inst = cls(*args)
        built.append((validator, inst))
        return inst

    return construct


def load_graph(data: bytes, approved: dict[tuple[str, str], Any], arrays: list[Any]) -> Any:
    unpickler = SafeUnpickler(data, approved, arrays)
    try:
        obj = unpickler.load()
    except (FormatError, UntrustedTypeError):
        raise
    except MemoryError as exc:
        raise ResourceLimitError("building the object needs too much memory") from exc
    except Exception as exc:
        raise FormatError(f"the object graph could not be built: {exc}") from exc
    for validator, inst in unpickler.built:
        validator(inst)
    return obj


def _validate_tree(tree: Any) -> None:
    """Reject a decision tree whose arrays would make native code read out of bounds."""
    import numpy as np

    n = tree.node_count
    nodes = tree.__getstate__()["nodes"]
    if n != len(nodes) or tree.value.shape[0] != n:
        raise IntegrityError("decision tree: node count does not match its arrays")
    if n == 0:
        return
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == -1
    for child in (left, right):
        inner = child[~leaf]
        if inner.size and (inner.min() <= 0 or inner.max() >= n):
            raise IntegrityError("decision tree: a child index points outside the tree")
    if not np.array_equal(leaf, right == -1):
        raise IntegrityError("decision tree: a node has exactly one child")
    features = nodes["feature"][~leaf]
    if features.size and (features.min() < 0 or features.max() >= tree.n_features):
        raise IntegrityError("decision tree: a feature index is out of range")


_VALIDATORS: dict[tuple[str, str], Callable[[Any], None]] = {
    ("sklearn.tree._tree", "Tree"): _validate_tree,
}
