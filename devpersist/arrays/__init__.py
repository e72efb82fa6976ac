"""Array handlers: one module per array library, one small interface, one registry.

A handler turns an array of its library into host bytes plus a JSON description
(:meth:`ArrayHandler.encode`) and back (:meth:`ArrayHandler.decode`). Finding the
handler for an object looks only at ``type(obj).__module__``, so a numpy-only model never
imports torch, CuPy or JAX; handler modules import their library lazily.
"""

from __future__ import annotations

from ._base import ArrayHandler, Encoded
from ._registry import foreign_array, handler_for, handler_for_namespace, registered_namespaces

__all__ = [
    "ArrayHandler",
    "Encoded",
    "foreign_array",
    "handler_for",
    "handler_for_namespace",
    "registered_namespaces",
]
