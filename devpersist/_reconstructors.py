"""devpersist's own reconstructors, each with the save-side reducer that writes it.

Saving: the pickler (:mod:`devpersist._pickler`) hands the few objects pickle would
store through code the allowlist must not admit (object arrays, masked arrays, matrices,
namespace modules, device objects, torch dtypes and sizes, time zones, oneDAL's
converter closures) to a ``reduce_*`` function here, which writes a call to the matching
reconstructor instead. Loading: the reconstructors are the functions a file may call
(:mod:`devpersist._rule_table` lists them with their uses); each checks its arguments,
since they come from the file.

**Wire names are format.** Files name these functions ``devpersist._graph._object_array``,
``devpersist._graph._namespace_module``... (v1 and golden files contain those strings).
:func:`wire` gives each function that module and name, so pickle keeps writing them
wherever the code lives; :mod:`devpersist._graph` holds the attributes pickle looks up.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import FormatError, UnsupportedObjectError

if TYPE_CHECKING:
    from ._devices import Placement

    #: What a save-side reducer returns: pickle's ``(callable, arguments)``.
    Reduced = tuple[Callable[..., Any], tuple[Any, ...]]

#: The module name files use for devpersist's reconstructors (part of the format).
WIRE_MODULE = "devpersist._graph"

F = TypeVar("F", bound=Callable[..., Any])


def wire(name: str) -> Callable[[F], F]:
    """Give a reconstructor its on-disk name (``devpersist._graph.<name>``)."""

    def mark(func: F) -> F:
        func.__module__ = WIRE_MODULE
        func.__qualname__ = func.__name__ = name
        return func

    return mark


# --------------------------------------------------------------------------- arrays


@wire("_object_array")
def object_array(items: list[Any], shape: tuple[int, ...]) -> Any:
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


def reduce_numpy_array(obj: Any) -> Any:
    """An object array as its elements (numeric arrays go out of band before this)."""
    if not obj.dtype.hasobject:
        return NotImplemented  # cannot happen: persistent_id took it
    if obj.dtype.fields is not None:
        raise UnsupportedObjectError(
            "structured arrays holding Python objects cannot be saved",
            type_name="numpy.ndarray",
        )
    return object_array, (list(obj.ravel(order="C")), obj.shape)


@wire("_masked_array")
def masked_array(data: Any, mask: Any, fill_value: Any, hard_mask: bool) -> Any:
    import numpy as np

    return np.ma.MaskedArray(data, mask=mask, fill_value=fill_value, hard_mask=bool(hard_mask))


def reduce_masked_array(obj: Any) -> Reduced:
    import numpy as np

    data, mask = np.asarray(obj.data), np.ma.getmaskarray(obj)
    return masked_array, (data, mask, obj.fill_value, obj.hardmask)


@wire("_matrix")
def matrix(array: Any) -> Any:
    """A ``numpy.matrix`` over an array stored like every other (out of band)."""
    import numpy as np

    if type(array) is not np.ndarray or array.ndim != 2:
        raise FormatError("malformed numpy matrix record")
    return np.asmatrix(array)


def reduce_matrix(obj: Any) -> Reduced:
    import numpy as np

    return matrix, (np.asarray(obj),)


# --------------------------------------------------------------------------- namespaces


@wire("_namespace_module")
def namespace_module(placement: Placement | None, name: str) -> Any:
    """An array-namespace module (e.g. ``PoissonRegressor._base_loss`` keeps one),
    converted to ``placement``'s library."""
    from ._namespaces import namespace_module as module

    return module(name, placement)


def reduce_module(obj: Any) -> Reduced:
    from ._namespaces import namespace_name

    return namespace_module, (namespace_name(obj),)


@wire("_device")
def device(placement: Placement | None, namespace: str, device: str) -> Any:
    """A library's device object, placed by ``placement`` as its arrays are."""
    from ._namespaces import device_object

    return device_object(namespace, device, placement)


def reduce_device(obj: Any) -> Any:
    from ._namespaces import device_reduce

    return device, device_reduce(obj)


@wire("_torch_size")
def torch_size(placement: Placement | None, dims: Any) -> Any:
    """``torch.Size`` (sklearnex keeps shapes of its torch inputs): a torch.Size when torch
    arrays stay torch arrays, a plain tuple after a conversion or without torch."""
    if not isinstance(dims, tuple) or not all(type(d) is int for d in dims):
        raise FormatError("malformed torch.Size record")
    torch = sys.modules.get("torch")
    if torch is None or (placement is not None and placement.namespace not in (None, "torch")):
        return dims
    return torch.Size(dims)


def reduce_torch_size(obj: Any) -> Reduced:
    return torch_size, (tuple(int(d) for d in obj),)


@wire("_dtype")
def dtype(placement: Placement | None, namespace: Any, name: Any) -> Any:
    """A library's dtype object (``torch.float32``), converted like the arrays are."""
    if namespace != "torch" or not isinstance(name, str) or not name.isidentifier():
        raise FormatError("malformed dtype record")
    target = placement.namespace if placement is not None else None
    torch = sys.modules.get("torch")
    if target not in (None, "torch") or torch is None:
        from .arrays import numpy_stand_in

        return numpy_stand_in(name)
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise FormatError(f"torch has no dtype {name!r}")
    return found


def reduce_torch_dtype(obj: Any) -> Reduced:
    return dtype, ("torch", str(obj).removeprefix("torch."))


# --------------------------------------------------------------------------- time zones

_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*\Z")


@wire("_zoneinfo")
def zoneinfo(key: Any) -> Any:
    """``zoneinfo.ZoneInfo(key)``: pickle's own form calls ``getattr(ZoneInfo, "_unpickle")``,
    which no allowlist should admit. The key names a system time-zone file, so it must
    be a plain relative zone name (no ``..``, no absolute path)."""
    if not isinstance(key, str) or len(key) > 255 or not _ZONE_KEY.match(key):
        raise FormatError("malformed time-zone key")
    import zoneinfo as zi

    try:
        return zi.ZoneInfo(key)
    except (zi.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise FormatError(f"time zone {key!a} is not available here: {exc}") from None


def reduce_zoneinfo(obj: Any) -> Reduced:
    try:
        obj.__reduce__()  # a zone read from a file object, even with a key, has no source
    except Exception as exc:  # to load again: zoneinfo refuses to pickle it, and so do we
        raise UnsupportedObjectError(
            f"a ZoneInfo read from a file cannot be saved ({exc})", type_name="zoneinfo.ZoneInfo"
        ) from exc
    return zoneinfo, (obj.key,)


# --------------------------------------------------------------------------- oneDAL


@wire("_onedal_return_type")
def onedal_return_type(template: Any) -> Any:
    """Rebuild oneDAL's table-to-array converter for arrays like ``template`` (an empty
    array, placed like every array: a numpy one gives oneDAL's numpy converter)."""
    from onedal.datatypes._data_conversion import return_type_constructor

    return return_type_constructor(template)


#: oneDAL's converter closures (``onedal.datatypes._data_conversion``), by qualified
#: name, with the free variable that tells the array type they convert to: torch and
#: other array-API libraries through array-api-compat (``array``), array-API libraries
#: with ``__array_namespace__`` (array-api-strict, CuPy: ``array``), dpnp (its SYCL
#: queue, ``device``).
ONEDAL_CLOSURES = {
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
    cell = ONEDAL_CLOSURES.get(obj.__qualname__)
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


def reduce_function(obj: Any) -> Any:
    """oneDAL keeps a closure that converts its tables to the training input's array
    type (see :data:`ONEDAL_CLOSURES`); pickle cannot save a closure. It is saved as an
    empty array of that library and device, from which oneDAL's own
    ``return_type_constructor`` rebuilds it, so it follows the load's placement like
    every array. Nothing of the closure itself is saved."""
    template = _onedal_template(obj)
    if template is not None:
        return onedal_return_type, (template,)
    return NotImplemented


def reduce_builtin_function(obj: Any) -> Any:
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
