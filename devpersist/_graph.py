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

import contextvars
import io
import pickle
import re
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

from . import arrays as _arrays
from ._exceptions import (
    DeviceError,
    DevpersistError,
    FormatError,
    IntegrityError,
    MissingLibraryError,
    ResourceLimitError,
    UnsupportedObjectError,
    UntrustedTypeError,
    printable,
)
from ._opcodes import precheck
from ._validate import VALIDATORS, checked_class

PROTOCOL = 5
#: Safety limit for the audit: the longest chain of nested containers.
MAX_DEPTH = 200


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
_by_type = _arrays.HANDLERS_BY_TYPE


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

    return _masked_array, (
        np.asarray(obj.data),
        np.ma.getmaskarray(obj),
        obj.fill_value,
        obj.hardmask,
    )


def _reduce_module(obj: Any) -> Any:
    from ._namespaces import namespace_name

    return _namespace_module, (namespace_name(obj),)


def _torch_size(dims: Any) -> Any:
    """``torch.Size`` (sklearnex keeps shapes of its torch inputs): a torch.Size when torch
    arrays stay torch arrays, a plain tuple after a conversion or without torch."""
    if not isinstance(dims, tuple) or not all(type(d) is int for d in dims):
        raise FormatError("malformed torch.Size record")
    from ._namespaces import TARGET

    placement = TARGET.get()
    torch = sys.modules.get("torch")
    if torch is None or (placement is not None and placement.namespace not in (None, "torch")):
        return dims
    return torch.Size(dims)


def _dtype(namespace: Any, name: Any) -> Any:
    """A library's dtype object (``torch.float32``), converted like the arrays are."""
    if namespace != "torch" or not isinstance(name, str) or not name.isidentifier():
        raise FormatError("malformed dtype record")
    from ._namespaces import TARGET

    placement = TARGET.get()
    target = placement.namespace if placement is not None else None
    torch = sys.modules.get("torch")
    if target not in (None, "torch") or torch is None:
        return _arrays.numpy_stand_in(name)
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise FormatError(f"torch has no dtype {name!r}")
    return dtype


_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*\Z")


def _zoneinfo(key: Any) -> Any:
    """``zoneinfo.ZoneInfo(key)``: pickle's own form calls ``getattr(ZoneInfo, "_unpickle")``,
    which no allowlist should admit. The key names a system time-zone file, so it must
    be a plain relative zone name (no ``..``, no absolute path)."""
    if not isinstance(key, str) or len(key) > 255 or not _ZONE_KEY.match(key):
        raise FormatError("malformed time-zone key")
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise FormatError(f"time zone {key!a} is not available here: {exc}") from None


def _reduce_zoneinfo(obj: Any) -> Any:
    try:
        obj.__reduce__()  # a zone read from a file object, even with a key, has no source
    except Exception as exc:  # to load again: zoneinfo refuses to pickle it, and so do we
        raise UnsupportedObjectError(
            f"a ZoneInfo read from a file cannot be saved ({exc})", type_name="zoneinfo.ZoneInfo"
        ) from exc
    return _zoneinfo, (obj.key,)


def _matrix(array: Any) -> Any:
    """A ``numpy.matrix`` over an array stored like every other (out of band)."""
    import numpy as np

    if type(array) is not np.ndarray or array.ndim != 2:
        raise FormatError("malformed numpy matrix record")
    return np.asmatrix(array)


def _reduce_matrix(obj: Any) -> Any:
    import numpy as np

    return _matrix, (np.asarray(obj),)


def _reduce_torch_dtype(obj: Any) -> Any:
    return _dtype, ("torch", str(obj).removeprefix("torch."))


def _reduce_torch_size(obj: Any) -> Any:
    return _torch_size, (tuple(int(d) for d in obj),)


def _reduce_device(obj: Any) -> Any:
    from ._namespaces import device_reduce

    return _device, device_reduce(obj)


def _refuse(reason: str) -> Callable[[Any], Any]:
    """A reducer for arrays no handler can save: pickle would write a file that fails
    to load (device storage, globals outside the allowlist)."""

    def reduce(obj: Any) -> Any:
        tp = type(obj)
        exc = UnsupportedObjectError(reason, type_name=f"{tp.__module__}.{tp.__qualname__}")
        exc.culprit = obj  # type: ignore[attr-defined]
        raise exc

    return reduce


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


def _onedal_return_type(template: Any) -> Any:
    """Rebuild oneDAL's table-to-array converter for arrays like ``template`` (an empty
    array, placed like every array: a numpy one gives oneDAL's numpy converter)."""
    from onedal.datatypes._data_conversion import return_type_constructor

    return return_type_constructor(template)


#: oneDAL's converter closures (``onedal.datatypes._data_conversion``), by qualified
#: name, with the free variable that tells the array type they convert to: torch and
#: other array-API libraries through array-api-compat (``array``), array-API libraries
#: with ``__array_namespace__`` (array-api-strict, CuPy: ``array``), dpnp (its SYCL
#: queue, ``device``).
_ONEDAL_CLOSURES = {
    "_compat_convert.<locals>.converter_func": "array",
    "return_type_constructor.<locals>.func": "array",
    "return_type_constructor.<locals>.<lambda>": "device",
}


def _onedal_template(obj: Any) -> Any:
    """An empty array of the library and device ``obj`` converts to, or None when ``obj``
    is not one of oneDAL's converter closures (or holds something unexpected)."""
    from .arrays import handler_for

    if obj.__module__ != "onedal.datatypes._data_conversion" or obj.__closure__ is None:
        return None
    cell = _ONEDAL_CLOSURES.get(obj.__qualname__)
    cells = dict(zip(obj.__code__.co_freevars, obj.__closure__))
    if cell is None or cell not in cells:
        return None
    held = cells[cell].cell_contents
    if cell == "device":  # dpnp: a SYCL queue and the dpnp module
        template = _dpnp_template(cells)
        if template is None:
            return None
    elif getattr(held, "ndim", 0) >= 1:
        template = held[:0, ...]  # array-api-strict refuses a partial index on 2-d
    else:
        return None
    if handler_for(type(template)) is None:  # only arrays a handler saves and places
        return None
    return template


def _reduce_function(obj: Any) -> Any:
    """oneDAL keeps a closure that converts its tables to the training input's array
    type (see ``_ONEDAL_CLOSURES``); pickle cannot save a closure. It is saved as an
    empty array of that library and device, from which oneDAL's own
    ``return_type_constructor`` rebuilds it, so it follows the load's placement like
    every array. Nothing of the closure itself is saved."""
    template = _onedal_template(obj)
    if template is not None:
        return _onedal_return_type, (template,)
    return NotImplemented


def _dpnp_template(cells: dict[str, Any]) -> Any:
    """oneDAL's dpnp converter holds the dpnp module (``xp``) and the input's SYCL queue
    (``device``): an empty dpnp array on that queue stands for it (None if the closure
    holds anything else)."""
    dpnp = sys.modules.get("dpnp")
    dpctl = sys.modules.get("dpctl")
    if dpnp is None or dpctl is None or set(cells) != {"device", "xp"}:
        return None
    queue = cells["device"].cell_contents
    if cells["xp"].cell_contents is not dpnp or type(queue) is not dpctl.SyclQueue:
        return None
    return dpnp.empty((0,), sycl_queue=queue)


def _classify(tp: type) -> Callable[[Any], Any] | None:
    """The special reducer for objects of type ``tp``, or None (pickle's default)."""
    module = getattr(tp, "__module__", "") or ""
    if tp is types.ModuleType:
        return _reduce_module
    if tp is types.FunctionType:
        return _reduce_function
    if tp is types.BuiltinFunctionType:
        return _reduce_builtin_function
    if module.startswith("numpy"):
        import numpy as np

        if tp is np.ndarray or tp is np.memmap:
            return _reduce_numpy_array
        if tp is np.ma.MaskedArray:
            return _reduce_masked_array
        if tp is np.matrix:
            return _reduce_matrix
        return None
    if module == "zoneinfo" and tp.__name__ == "ZoneInfo":
        return _reduce_zoneinfo
    if module == "torch" and tp.__name__ == "Size":
        return _reduce_torch_size
    if module == "torch" and tp.__name__ == "dtype":
        return _reduce_torch_dtype
    if _arrays.is_device_type(tp):
        return _reduce_device
    reason = _arrays.foreign_array(tp)
    if reason is not None:
        return _refuse(reason)
    return None


_special: dict[type, Callable[[Any], Any] | None] = {}


def dump_graph(obj: Any) -> tuple[bytes, list[ArrayRef]]:
    """Pickle ``obj`` with its arrays out of band; name the culprit if it cannot."""
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
            f"this object's graph breaks a limit every reader enforces ({exc}); "
            "nothing was written"
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


# --------------------------------------------------------------------------- auditing


class _Stub:
    """Stands in for the object a global builds during the audit.

    Each global gets its own stub class (``origin`` names it). Building a stub records
    that the global was *called*; BUILD, SETITEM and APPEND on it record that its
    result was *modified*. ``parts`` keeps what was passed in, for the limits check.
    """

    __slots__ = ("parts",)
    parts: list[Any]
    origin: Any = None
    _is_stub = True

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:  # NEWOBJ calls __new__ only
        self = object.__new__(cls)
        self.parts = [args, kwargs]
        _AUDIT.get().called.add(cls.origin)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # recorded, not raised, so the audit still collects every name it refers to
        audit = _AUDIT.get()
        audit.called_results.add(type(self).origin)
        cls = _stub_class(("<result of>", _name(type(self).origin)))
        audit.stub_types.add(cls)
        return cls(*args, **kwargs)

    def _modified(self) -> None:
        _AUDIT.get().modified.add(type(self).origin)

    def __setstate__(self, state: Any) -> None:
        self._modified()
        self.parts.append(state)

    def append(self, item: Any) -> None:
        self._modified()
        self.parts.append(item)

    def extend(self, items: Any) -> None:
        self._modified()
        self.parts.append(items)

    def add(self, item: Any) -> None:
        self._modified()
        self.parts.append(item)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._modified()
        self.parts.append(key)
        self.parts.append(value)


def _said(exc: BaseException) -> str:
    """An exception's message for ours: it may quote file data, so escaped and cut."""
    text = printable(str(exc))
    return text if len(text) <= 300 else text[:297] + "..."


def _name(origin: Any) -> str:
    return ".".join(origin) if isinstance(origin, tuple) else str(origin)


ARRAY_ORIGIN = ("<array>", "<out of band>")
_stub_classes: dict[Any, type] = {}


def _stub_class(origin: Any) -> type:
    cls = _stub_classes.get(origin)
    if cls is None:
        cls = type("_Stub", (_Stub,), {"__slots__": (), "origin": origin})
        if len(_stub_classes) < 4096:
            _stub_classes[origin] = cls
    return cls


class Audit:
    """What a stream does: the globals it names, calls, and whose results it modifies."""

    def __init__(self) -> None:
        self.names: set[tuple[str, str]] = set()
        self.called: set[Any] = set()
        self.modified: set[Any] = set()
        self.called_results: set[Any] = set()
        self.pids: set[int] = set()
        self.stub_types: set[type] = set()


_AUDIT: contextvars.ContextVar[Audit] = contextvars.ContextVar("devpersist_audit")


class _AuditUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, n_arrays: int, audit: Audit) -> None:
        super().__init__(stream)
        self.audit = audit
        self._n_arrays = n_arrays
        self._array = _stub_class(ARRAY_ORIGIN)
        audit.stub_types.add(self._array)

    def find_class(self, module: str, name: str) -> Any:
        origin = (module, name)
        self.audit.names.add(origin)
        cls = _stub_class(origin)
        self.audit.stub_types.add(cls)
        return cls

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is not int or not 0 <= pid < self._n_arrays:
            raise FormatError(f"the object graph refers to array {pid!r}, which the file lacks")
        self.audit.pids.add(pid)
        stub: Any = object.__new__(self._array)
        stub.parts = []
        return stub


def audit(data: bytes, n_arrays: int, limits: bool = True) -> Audit:
    """Audit a stream without importing or building anything real: every global it
    names, which it calls and which results it modifies, with resource limits."""
    if limits:
        precheck(data)  # before the C unpickler spends what the stream asks for
    result = Audit()
    stream = io.BytesIO(data)
    token = _AUDIT.set(result)
    try:
        root = _AuditUnpickler(stream, n_arrays, result).load()
    except (FormatError, ResourceLimitError):
        raise
    except RecursionError as exc:
        raise ResourceLimitError("the object graph is nested too deeply (limit MAX_DEPTH)") from exc
    except MemoryError as exc:
        raise ResourceLimitError("the object graph needs too much memory") from exc
    except Exception as exc:
        raise IntegrityError(f"the object graph is not a valid stream: {_said(exc)}") from exc
    finally:
        _AUDIT.reset(token)
    if stream.tell() != len(data):
        raise IntegrityError("bytes follow the end of the object graph's stream")
    if result.pids != set(range(n_arrays)):
        raise IntegrityError("the manifest lists arrays the object graph never uses")
    if ARRAY_ORIGIN in result.modified:
        raise FormatError("the object graph modifies an array after loading it")
    if limits:
        _check_shape(root, frozenset(result.stub_types))
    return result


def scan(data: bytes, n_arrays: int) -> set[tuple[str, str]]:
    """The globals a stream names (see :func:`audit`)."""
    return audit(data, n_arrays).names


#: Limits on the audited graph: the longest chain of nested containers, and the size of
#: the graph with every shared reference expanded (what ``repr`` or ``np.asarray`` of
#: it would walk: a "billion laughs" of nested shared lists is 700 bytes of pickle).
MAX_EXPANDED = 10_000_000


def _check_shape(root: Any, stub_types: frozenset[type] = frozenset()) -> None:
    """Longest nesting chain and expanded size, over the shared graph (no recursion).

    A post-order walk computes, for each container, the size of its expansion and the
    depth below it, once per distinct object; a reference back to an object still being
    walked (a cycle) counts as a leaf.
    """
    plain = _CONTAINERS
    containers = plain | stub_types

    def kids(obj: Any) -> list[Any]:
        tp = type(obj)
        items = [*obj.values(), *obj] if tp is dict else obj if tp in plain else obj.parts
        return [c for c in items if type(c) in containers]

    if type(root) not in containers:
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, Any]] = [(root, None)]
    while stack:
        obj, children = stack.pop()
        key = id(obj)
        if children is not None:  # all children done: this container's totals
            total = (
                len(obj.parts if hasattr(obj, "parts") else obj)
                + (len(obj) if type(obj) is dict else 0)
                + 1
            )
            deepest = 0
            for child in children:
                ck = id(child)
                if ck in size:
                    total += size[ck] - 1
                    if depth[ck] > deepest:
                        deepest = depth[ck]
            size[key], depth[key] = total, deepest + 1
            active.discard(key)
            if total > MAX_EXPANDED:
                raise ResourceLimitError(
                    f"the object graph expands to more than {MAX_EXPANDED} objects "
                    "(shared references nested in shared references; limit MAX_EXPANDED)"
                )
            if deepest + 1 > MAX_DEPTH:
                raise ResourceLimitError(
                    f"the object graph nests deeper than {MAX_DEPTH} levels (limit MAX_DEPTH)"
                )
            continue
        if key in size or key in active:
            continue
        active.add(key)
        children = kids(obj)
        stack.append((obj, children))
        for child in children:
            ck = id(child)
            if ck not in size and ck not in active:
                stack.append((child, None))


_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


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
        hook = VALIDATORS.get((module, name))
        if hook is None:
            return obj
        style, validator = hook
        if style == "class":
            return checked_class(obj, validator, self.built)
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
    except (FormatError, UntrustedTypeError, DeviceError, MissingLibraryError):
        raise  # placement decisions for device objects met while building
    except MemoryError as exc:
        raise ResourceLimitError("building the object needs too much memory") from exc
    except Exception as exc:
        raise FormatError(
            f"the object graph could not be built ({type(exc).__name__}: {_said(exc)})"
        ) from exc
    for validator, inst in unpickler.built:
        try:
            validator(inst)
        except DevpersistError:
            raise
        except Exception as exc:  # state too malformed for the check itself to read
            raise IntegrityError(
                f"a {type(inst).__name__} in the file has malformed state "
                f"({type(exc).__name__}: {_said(exc)})"
            ) from exc
    return obj
