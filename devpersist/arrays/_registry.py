"""The one list of array libraries, and lookups by type that never import a library.

Every other module asks this registry what it needs to know about array libraries:
which namespaces a file may name (:func:`namespaces`), which handler owns an array type
(:func:`handler_for`), which top-level modules hold arrays (:func:`array_modules`, for
the attribute-path walk), which distributions to record (:func:`distributions`), and
whether a type is a library's device object (:func:`device_handler`). Adding a library
is one handler module plus one :func:`register` line below.

A handler module is imported the first time its library is met (fsspec-style); the
library itself only when an array of it exists or must be built.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from ._base import ArrayHandler


@dataclass(frozen=True)
class Library:
    """One registry line: what is known of a library before its handler is imported.

    Parameters
    ----------
    namespace : str
        The name recorded in the manifest (``"torch"``); what ``namespace=`` accepts.
    handler : str
        ``"module:Class"`` of its :class:`ArrayHandler`, imported on first use.
    modules : tuple of str
        Top-level modules whose types it may own (JAX's arrays live in ``jaxlib``); the
        first is the one that must be importable for the library to be available.
    install : str
        The distribution to install when it is missing; its version is recorded.
    """

    namespace: str
    handler: str
    modules: tuple[str, ...]
    install: str


LIBRARIES: dict[str, Library] = {}
#: Handler owning each type met so far (None: no array). Public so the pickler's hot
#: path can read it with one dict lookup; cleared in place when the registry changes.
HANDLERS_BY_TYPE: dict[type, ArrayHandler | None] = {}
_instances: dict[str, ArrayHandler] = {}
_by_module: dict[str, str] = {}
_device_handlers: dict[type, ArrayHandler | None] = {}
_namespaces: frozenset[str] = frozenset()


def register(library: Library) -> None:
    """Add (or replace) a library; clears every cache that depends on the list."""
    global _namespaces
    LIBRARIES[library.namespace] = library
    _rebuild()


def unregister(namespace: str) -> None:
    """Remove a library (tests register fake ones, then remove them)."""
    LIBRARIES.pop(namespace, None)
    _rebuild()


def _rebuild() -> None:
    global _namespaces
    _namespaces = frozenset(LIBRARIES)
    _by_module.clear()
    for library in LIBRARIES.values():
        for module in library.modules:
            _by_module[module] = library.namespace
    _instances.clear()
    HANDLERS_BY_TYPE.clear()
    _device_handlers.clear()


register(Library("numpy", "devpersist.arrays._numpy:NumpyHandler", ("numpy",), "numpy"))
register(Library("torch", "devpersist.arrays._torch:TorchHandler", ("torch",), "torch"))
register(
    Library(
        "array_api_strict",
        "devpersist.arrays._array_api_strict:ArrayApiStrictHandler",
        ("array_api_strict",),
        "array-api-strict",
    )
)
register(Library("cupy", "devpersist.arrays._cupy:CupyHandler", ("cupy",), "cupy"))
register(Library("jax", "devpersist.arrays._jax:JaxHandler", ("jax", "jaxlib"), "jax"))
register(Library("dpnp", "devpersist.arrays._dpnp:DpnpHandler", ("dpnp", "dpctl"), "dpnp"))


def namespaces() -> frozenset[str]:
    """The namespaces a file may name: the registered libraries."""
    return _namespaces


def registered_namespaces() -> list[str]:
    """:func:`namespaces`, sorted (for messages)."""
    return sorted(_namespaces)


def array_modules() -> frozenset[str]:
    """Top-level modules whose objects are arrays or array machinery (never walked into)."""
    return frozenset(_by_module)


def distributions() -> dict[str, str]:
    """``{distribution: module}`` of every library, to record the versions in use."""
    return {lib.install: lib.modules[0] for lib in LIBRARIES.values()}


def handler_for_namespace(namespace: str) -> ArrayHandler:
    """The handler of ``namespace`` (KeyError if unknown); imports the handler module only.

    The instance receives its registry line's ``namespace``, ``modules`` and ``install``.
    """
    handler = _instances.get(namespace)
    if handler is None:
        library = LIBRARIES[namespace]
        module, _, cls = library.handler.partition(":")
        handler = getattr(importlib.import_module(module), cls)()
        handler.namespace = library.namespace
        handler.modules = library.modules
        handler.install = library.install
        handler.label = handler.label or library.namespace
        _instances[namespace] = handler
    return handler


def _candidate(tp: type) -> ArrayHandler | None:
    """The handler of the library whose top-level module defines ``tp``, if registered
    (the caller asks it whether ``tp`` is really its type)."""
    namespace = _by_module.get((getattr(tp, "__module__", "") or "").partition(".")[0])
    return None if namespace is None else handler_for_namespace(namespace)


def handler_for(tp: type) -> ArrayHandler | None:
    """The handler owning array type ``tp``, or None; cached per type, never imports."""
    try:
        return HANDLERS_BY_TYPE[tp]
    except KeyError:
        pass
    candidate = _candidate(tp)
    handler = candidate if candidate is not None and candidate.owns(tp) else None
    HANDLERS_BY_TYPE[tp] = handler
    return handler


def device_handler(tp: type) -> ArrayHandler | None:
    """The handler whose library's device object type is ``tp`` (``torch.device``,
    array-api-strict's ``Device``, ``cupy.cuda.Device``), or None; never imports."""
    try:
        return _device_handlers[tp]
    except KeyError:
        pass
    candidate = _candidate(tp)
    handler = candidate if candidate is not None and tp in candidate.device_types() else None
    _device_handlers[tp] = handler
    return handler


def is_device_type(tp: type) -> bool:
    """Is ``tp`` a device object type of a registered library? Never imports."""
    return device_handler(tp) is not None


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
            hint = handler_for_namespace(namespace).subclass_hint
            return (
                f"devpersist saves {namespace}'s plain array types only, not "
                f"{_qualname(tp)}: convert it to one{hint}"
            )
    if top not in _by_module and any(hasattr(tp, a) for a in _ARRAY_ATTRIBUTES):
        return (
            f"it is an array of a library devpersist has no handler for ({top}); "
            f"convert it to one of {registered_namespaces()}"
        )
    return None


def _imported_libraries() -> list[str]:
    """Namespaces (numpy aside) whose library is imported: only those can own ``tp``."""
    found = {ns for mod, ns in _by_module.items() if sys.modules.get(mod) is not None}
    return sorted(found - {"numpy"})


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"
