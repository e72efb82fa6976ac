"""Objects that name a device, a dtype or an array namespace, stored by name.

scikit-learn keeps some of these in fitted state (``PoissonRegressor._base_loss`` holds
an array namespace *module* and a device). They are saved as plain strings and rebuilt
on load, remapped the same way as the arrays (``namespace="numpy"`` turns a torch
namespace into the numpy one, ``device="cpu"`` turns ``cuda:0`` into ``cpu``).
"""

from __future__ import annotations

import contextvars
import importlib
from typing import Any

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

#: The Placement of the load in progress (see _devices.py); None outside a load.
TARGET: contextvars.ContextVar[Any] = contextvars.ContextVar("devpersist_placement", default=None)


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
    module, name = tp.__module__, tp.__name__
    return (
        (module == "torch" and name == "device")
        or (module.startswith("array_api_strict") and name == "Device")
        or (module.startswith("cupy") and name == "Device")
    )


def device_reduce(obj: Any) -> tuple[str, str] | None:
    """``(namespace, device string)`` for a device object, else None. Never imports."""
    tp = type(obj)
    module = tp.__module__
    if module == "torch" and tp.__name__ == "device":
        return "torch", str(obj)
    if module.startswith("array_api_strict") and tp.__name__ == "Device":
        return "array_api_strict", obj._device
    if module.startswith("cupy") and tp.__name__ == "Device":
        return "cupy", f"cuda:{obj.id}"
    return None


def device_object(namespace: Any, device: Any) -> Any:
    """Rebuild a device object, placed by the load's rules (as its arrays are)."""
    if not isinstance(namespace, str) or not isinstance(device, str):
        raise FormatError("malformed device record")
    if namespace not in ("torch", "array_api_strict", "cupy"):
        raise FormatError(f"unknown device namespace {namespace!r}")
    placement = TARGET.get()
    if placement is None:
        from ._devices import Placement

        placement = Placement()
    return placement.device_object(namespace, device)
