"""Objects that name a device or an array namespace, stored by name.

scikit-learn keeps some of these in fitted state (``PoissonRegressor._base_loss`` holds
an array namespace *module* and a device). They are saved as plain strings and rebuilt
on load, remapped the same way as the arrays (``namespace="numpy"`` turns a torch
namespace into the numpy one, ``device="cpu"`` turns ``cuda:0`` into ``cpu``).

Data flow: the pickler (``_graph``) calls :func:`namespace_name` and
:func:`device_reduce` while saving; the reconstructors call :func:`namespace_module` and
:func:`device_object` while building, which ask the load's :class:`Placement`, passed to
them by the safe unpickler (the rules marked ``placed``). What a device object is,
per library, is known to the array registry (``arrays``).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import arrays
from ._devices import Placement
from ._exceptions import FormatError, UnsupportedObjectError

# array-api-compat's wrapper modules (``<prefix>.<library>``), vendored under these
# prefixes too; the libraries it wraps are its own fact, not the registry's.
_COMPAT_PREFIXES = (
    "array_api_compat",
    "sklearn.externals.array_api_compat",
    "scipy._lib.array_api_compat",
)
_COMPAT_WRAPS = {"numpy": "numpy", "cupy": "cupy", "torch": "torch", "dask.array": "dask"}

__all__ = [
    "device_object",
    "device_reduce",
    "is_device_type",
    "namespace_module",
    "namespace_name",
]


def _bare() -> dict[str, str]:
    """Each registered library's own namespace module -> its namespace (``jax.numpy`` ->
    ``jax``); imports handler modules only."""
    return {
        arrays.handler_for_namespace(ns).xp_module or ns: ns
        for ns in arrays.registered_namespaces()
    }


def _split(name: str) -> tuple[str, str, str] | None:
    """``(prefix, module under it, library namespace)`` of a known namespace module."""
    bare = _bare()
    if name in bare:
        return "", name, bare[name]
    for prefix in _COMPAT_PREFIXES:
        wrapped = name.removeprefix(prefix + ".")
        if wrapped != name and wrapped in _COMPAT_WRAPS:
            return prefix, wrapped, _COMPAT_WRAPS[wrapped]
    return None


def namespace_name(module: Any) -> str:
    """The name a namespace module is saved by; UnsupportedObjectError for other modules."""
    name = getattr(module, "__name__", "")
    if isinstance(name, str) and _split(name) is not None:
        return name
    raise UnsupportedObjectError(
        f"cannot save module {name!r}: only array namespace modules are saved (by name)",
        type_name="module",
    )


def namespace_module(name: Any, placement: Placement | None = None) -> Any:
    """Import the namespace module ``name``, converted to ``placement``'s target library
    (the load's; None keeps the saved library)."""
    if not isinstance(name, str):
        raise FormatError("malformed namespace module name")
    found = _split(name)
    if found is None:
        raise FormatError(f"{name[:200]!r} is not a known array namespace module")
    prefix, module, library = found
    target = placement.target_library(library) if placement else library
    if target != library:
        wrapped = {lib: mod for mod, lib in _COMPAT_WRAPS.items()}.get(target)
        if prefix and target != "numpy" and wrapped is not None:
            module = wrapped  # the same wrapper family, for the target library
        else:
            prefix = ""
            bare = {ns: mod for mod, ns in _bare().items()}
            module = bare.get(target, target)
    return importlib.import_module(f"{prefix}.{module}" if prefix else module)


# --------------------------------------------------------------------------- devices


def is_device_type(tp: type) -> bool:
    """Is ``tp`` a device object type of an array library (asks the registry)?"""
    return arrays.is_device_type(tp)


def device_reduce(obj: Any) -> tuple[str, str] | None:
    """``(namespace, device string)`` for a device object, else None. Never imports."""
    return arrays.namespace_of_device(obj)


def device_object(namespace: Any, device: Any, placement: Placement | None = None) -> Any:
    """Rebuild a device object, placed by ``placement`` (the load's) as its arrays are."""
    if not isinstance(namespace, str) or not isinstance(device, str):
        raise FormatError("malformed device record")
    if (
        namespace not in arrays.namespaces()
        or not arrays.handler_for_namespace(namespace).device_classes
    ):
        raise FormatError(f"unknown device namespace {namespace[:64]!r}")
    if placement is None:
        placement = Placement()
    return placement.device_object(namespace, device)
