"""Array handlers: one module per array library, one small interface, one registry.

Everything devpersist knows about an array library lives here: how to find its arrays
and device objects (by type, never importing it), its element types, devices, and how
its arrays become bytes (:meth:`ArrayHandler.encode`) and come back
(:meth:`ArrayHandler.decode`). The rest of the package asks these functions; adding a
library is one handler module plus one :func:`register` line in ``_registry.py``.
The dtype grammar of the manifest (:func:`dtype_from_descr`) lives here too, below the
container code that validates entries with it.
"""

from __future__ import annotations

from ._base import ArrayEntry, ArrayHandler, Encoded
from ._descr import decoded_size, dtype_from_descr, dtype_to_descr
from ._dtypes import numpy_stand_in
from ._numpy import empty_host, host_bytes
from ._registry import (
    HANDLERS_BY_TYPE,
    LIBRARIES,
    Library,
    array_modules,
    device_handler,
    distributions,
    foreign_array,
    handler_for,
    handler_for_namespace,
    is_device_type,
    namespaces,
    register,
    registered_namespaces,
    unregister,
)

__all__ = [
    "HANDLERS_BY_TYPE",
    "LIBRARIES",
    "ArrayEntry",
    "ArrayHandler",
    "Encoded",
    "Library",
    "array_modules",
    "decoded_size",
    "device_handler",
    "distributions",
    "dtype_from_descr",
    "dtype_to_descr",
    "empty_host",
    "foreign_array",
    "handler_for",
    "handler_for_namespace",
    "host_bytes",
    "is_device_type",
    "namespace_of_device",
    "namespaces",
    "numpy_stand_in",
    "register",
    "registered_namespaces",
    "unregister",
]


def namespace_of_device(obj: object) -> tuple[str, str] | None:
    """``(namespace, device string)`` for a library's device object, else None.

    Never imports: an instance exists, so its library is imported.
    """
    handler = device_handler(type(obj))
    if handler is None:
        return None
    return handler.namespace, handler.device_string(obj)
