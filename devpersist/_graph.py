"""The object graph: a pickle protocol 5 stream whose arrays live outside it.

This module is the graph's public face and the home of its wire names; the work is
done by one module per step:

* save: :mod:`devpersist._pickler` (pickle with arrays out of band; the special types
  go through the reducers of :mod:`devpersist._reconstructors`);
* load, in skops' order: **parse** (the container was validated and the stream's
  checksum verified), **audit** (:mod:`devpersist._audit`: an inert replay,
  :mod:`devpersist._replay`, records every global the stream can reach and what it does
  with it, and checks resource limits, importing and building nothing), **resolve**
  (:mod:`devpersist._safety` judges every name by the rule table,
  :mod:`devpersist._rule_table`), **construct** (:mod:`devpersist._unpickler` hands out
  only the approved globals, then runs the table's checks on what was built).

**Wire names.** Files name devpersist's reconstructors ``devpersist._graph._object_array``,
``devpersist._graph._namespace_module``...: those strings are part of the format (v1 and
golden files contain them). The attributes below are what pickle looks up when it writes
them; a load never imports this module to resolve them (the rule table maps each wire
name to its function).
"""

from __future__ import annotations

from . import _reconstructors as _rec
from ._audit import MAX_DEPTH, MAX_EXPANDED, Audit, audit, check_shape, scan
from ._pickler import PROTOCOL, ArrayRef, dump_graph
from ._replay import ARRAY_ORIGIN
from ._unpickler import SafeUnpickler, load_graph

__all__ = [
    "ARRAY_ORIGIN",
    "MAX_DEPTH",
    "MAX_EXPANDED",
    "PROTOCOL",
    "ArrayRef",
    "Audit",
    "SafeUnpickler",
    "audit",
    "check_shape",
    "dump_graph",
    "load_graph",
    "scan",
]

# the wire names (see the module docstring): format, never to be renamed
_object_array = _rec.object_array
_masked_array = _rec.masked_array
_matrix = _rec.matrix
_namespace_module = _rec.namespace_module
_device = _rec.device
_torch_size = _rec.torch_size
_dtype = _rec.dtype
_zoneinfo = _rec.zoneinfo
_onedal_return_type = _rec.onedal_return_type
