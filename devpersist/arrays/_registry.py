"""The table of array handlers, looked up by type without importing any library."""

from __future__ import annotations

import importlib
import sys

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


# Attributes only arrays define (DLPack, CUDA array interface, array API).
_ARRAY_ATTRIBUTES = ("__dlpack__", "__cuda_array_interface__", "__array_namespace__")


def foreign_array(tp: type) -> str | None:
    """Why ``tp``, an array type no handler owns, cannot be saved; None if it is no array.

    Pickle would store such an array through its library's own reducer, which either
    fails on load (device storage) or names globals the allowlist refuses: refusing it
    at save time, with the reason, is better than writing a file that cannot load.
    numpy's own subclasses are left to pickle. Never imports a library.
    """
    if handler_for(tp) is not None:
        return None
    top = getattr(tp, "__module__", "").partition(".")[0]
    if top == "numpy":
        return None
    for namespace in _imported_libraries():
        bases = handler_for_namespace(namespace).array_types()
        if bases and issubclass(tp, bases):
            hint = " (tensor.as_subclass(torch.Tensor))" if namespace == "torch" else ""
            return (
                f"devpersist saves {namespace}'s plain array types only, not "
                f"{_qualname(tp)}: convert it to one{hint}"
            )
    if top not in _MODULE_TO_NAMESPACE and any(hasattr(tp, a) for a in _ARRAY_ATTRIBUTES):
        return (
            f"it is an array of a library devpersist has no handler for ({top}); "
            f"convert it to one of {registered_namespaces()}"
        )
    return None


def _imported_libraries() -> list[str]:
    """Namespaces (numpy aside) whose library is imported: only those can own ``tp``."""
    found = {ns for mod, ns in _MODULE_TO_NAMESPACE.items() if sys.modules.get(mod) is not None}
    return sorted(found - {"numpy"})


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"
