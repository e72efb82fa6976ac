"""Objects that name a device or an array namespace, stored by name.

scikit-learn keeps some of these in fitted state (``PoissonRegressor._base_loss`` holds
an array namespace *module* and a device). They are saved as plain strings and rebuilt
on load, remapped the same way as the arrays (``namespace="numpy"`` turns a torch
namespace into the numpy one, ``device="cpu"`` turns ``cuda:0`` into ``cpu``).

Data flow: the pickler (``_graph``) calls :func:`namespace_name` and
:func:`device_reduce` while saving; the reconstructors call :func:`namespace_module` and
:func:`device_object` while building, which ask the load's :class:`Placement` (the
``TARGET`` context variable, defined with it in ``_devices``). What a device object is,
per library, is known to the array registry (``arrays``).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import arrays
from ._devices import TARGET, Placement
from ._exceptions import FormatError, UnsupportedObjectError

# Families of namespace modules: (prefix, libraries it wraps). The module rebuilt is
# ``prefix + "." + library``, or the library itself for the bare family "".
_FAMILIES = {
    "": ("numpy", "array_api_strict", "cupy", "dpnp", "jax.numpy", "torch"),
    "array_api_compat": ("numpy", "cupy", "torch", "dask.array"),
    "sklearn.externals.array_api_compat": ("numpy", "cupy", "torch", "dask.array"),
    "scipy._lib.array_api_compat": ("numpy", "cupy", "torch", "dask.array"),
}
_LIBRARY_OF = {"jax.numpy": "jax", "dask.array": "dask"}

__all__ = ["TARGET", "device_object", "device_reduce", "is_device_type", "namespace_module"]


def namespace_name(module: Any) -> str:
    name = getattr(module, "__name__", "")
    for family, libraries in _FAMILIES.items():
        for library in libraries:
            if name == (f"{family}.{library}" if family else library):
                return name
    raise UnsupportedObjectError(
        f"cannot save module {name!r}: only array namespace modules are saved (by name)",
        type_name="module",
    )


def _split(name: str) -> tuple[str, str]:
    for family, libraries in _FAMILIES.items():
        for library in libraries:
            if name == (f"{family}.{library}" if family else library):
                return family, library
    raise FormatError(f"{name!r} is not a known array namespace module")


def namespace_module(name: Any) -> Any:
    """Import the namespace module ``name``, converted to the load's target library."""
    if not isinstance(name, str):
        raise FormatError("malformed namespace module name")
    family, library = _split(name)
    placement = TARGET.get()
    target = placement.target_library(_LIBRARY_OF.get(library, library)) if placement else None
    if target is not None and target != _LIBRARY_OF.get(library, library):
        library = target
        if family and library not in _FAMILIES[family]:
            family = ""
        if family and library == "numpy":
            family = ""
    return importlib.import_module(f"{family}.{library}" if family else library)


# --------------------------------------------------------------------------- devices


def is_device_type(tp: type) -> bool:
    """Is ``tp`` a device object type of an array library (asks the registry)?"""
    return arrays.is_device_type(tp)


def device_reduce(obj: Any) -> tuple[str, str] | None:
    """``(namespace, device string)`` for a device object, else None. Never imports."""
    return arrays.namespace_of_device(obj)


def device_object(namespace: Any, device: Any) -> Any:
    """Rebuild a device object, placed by the load's rules (as its arrays are)."""
    if not isinstance(namespace, str) or not isinstance(device, str):
        raise FormatError("malformed device record")
    if (
        namespace not in arrays.namespaces()
        or not arrays.handler_for_namespace(namespace).device_classes
    ):
        raise FormatError(f"unknown device namespace {namespace[:64]!r}")
    placement = TARGET.get()
    if placement is None:
        placement = Placement()
    return placement.device_object(namespace, device)
