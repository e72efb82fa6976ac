"""The table of array handlers, looked up by type without importing any library."""

from __future__ import annotations

import importlib
from typing import Any

from ._base import ArrayHandler

# namespace -> "module:Class", imported the first time an array of it is met (fsspec-style)
_HANDLERS: dict[str, str] = {
    "numpy": "devpersist.arrays._numpy:NumpyHandler",
    "torch": "devpersist.arrays._torch:TorchHandler",
    "array_api_strict": "devpersist.arrays._array_api_strict:ArrayApiStrictHandler",
    "cupy": "devpersist.arrays._cupy:CupyHandler",
    "jax": "devpersist.arrays._jax:JaxHandler",
    "dpnp": "devpersist.arrays._dpnp:DpnpHandler",
}
# top-level module of an array type -> namespace
_MODULE_TO_NAMESPACE = {
    "numpy": "numpy",
    "torch": "torch",
    "array_api_strict": "array_api_strict",
    "cupy": "cupy",
    "jax": "jax",
    "jaxlib": "jax",
    "dpnp": "dpnp",
    "dpctl": "dpnp",
}

_instances: dict[str, ArrayHandler] = {}
_by_type: dict[type, ArrayHandler | None] = {}


def registered_namespaces() -> list[str]:
    return sorted(_HANDLERS)


def handler_for_namespace(namespace: str) -> ArrayHandler:
    handler = _instances.get(namespace)
    if handler is None:
        target = _HANDLERS.get(namespace)
        if target is None:
            raise KeyError(namespace)
        module, _, cls = target.partition(":")
        handler = getattr(importlib.import_module(module), cls)()
        _instances[namespace] = handler
    return handler


def handler_for(tp: type) -> ArrayHandler | None:
    """The handler owning array type ``tp``, or None; cached per type."""
    try:
        return _by_type[tp]
    except KeyError:
        pass
    handler = None
    namespace = _MODULE_TO_NAMESPACE.get(getattr(tp, "__module__", "").partition(".")[0])
    if namespace is not None:
        candidate = handler_for_namespace(namespace)
        if candidate.owns(tp):
            handler = candidate
    _by_type[tp] = handler
    return handler


def clear_cache() -> None:
    _by_type.clear()


