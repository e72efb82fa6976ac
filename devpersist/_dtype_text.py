"""Array dtypes as the manifest writes them, and back: a closed set, never objects.

Place in the data flow: the writer (:mod:`devpersist._save`) records each array's dtype
with :func:`dtype_to_json`; the manifest validation (:mod:`devpersist._manifest`) and
the decoders (:mod:`devpersist._devices`, ``arrays/``) parse it with
:func:`storage_dtype`. A string is numpy's ``dtype.str`` of a closed set (booleans,
integers, floats, complex, fixed-width bytes/text/void, datetimes); a list is a
structured dtype's ``descr`` with tuples as lists.
"""

from __future__ import annotations

import re
from typing import Any

from ._exceptions import FormatError, shown

_DTYPE_RE = re.compile(r"[<>|=]?(b1|[iuf][1248]|f16|c(8|16|32)|[SUV]\d{1,9}|[mM]8(\[\w{1,6}\])?)\Z")


def _dtype_from_string(descr: str) -> Any:
    """A dtype string of the closed set. With ``<``, ``>`` or ``|`` it must be numpy's own
    spelling (``|i4`` and ``<b1`` are not); ``=`` or nothing means native order."""
    import numpy as np

    if not _DTYPE_RE.match(descr):
        raise ValueError(descr)
    dtype = np.dtype(descr)
    order = descr[0] if descr[0] in "<>|=" else ""
    if order in ("", "="):
        if dtype.str[1:] != descr[len(order) :]:
            raise ValueError(descr)
    elif dtype.str != descr:
        raise ValueError(descr)
    return dtype


_dtype_cache: dict[str, Any] = {}


def storage_dtype(descr: Any, where: str = "array") -> Any:
    """The numpy dtype of stored bytes, from a closed set: never objects, never code.

    Parsed dtypes are cached by their JSON text (a forest has hundreds of node arrays
    with the same structured dtype).
    """
    key = descr if isinstance(descr, str) else repr(descr)  # repr: C speed, exact for JSON data
    dtype = _dtype_cache.get(key)
    if dtype is None:
        dtype = _parse_dtype(descr, where)
        if len(_dtype_cache) < 1024:
            _dtype_cache[key] = dtype
    return dtype


def _parse_dtype(descr: Any, where: str) -> Any:
    import numpy as np

    try:
        if isinstance(descr, str):
            dtype = _dtype_from_string(descr)
        else:
            dtype = np.lib.format.descr_to_dtype(_descr_from_json(descr))
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise FormatError(f"{where}: unsupported dtype {shown(descr)}") from exc
    if dtype.hasobject:
        raise FormatError(f"{where}: object dtypes are never stored as raw bytes")
    return dtype


def _descr_from_json(descr: Any, depth: int = 0) -> Any:
    """JSON lists back to the tuples numpy's descr uses, validating as we go."""
    if depth > 8 or not isinstance(descr, list):
        raise ValueError("bad structured dtype")
    fields: list[tuple[Any, ...]] = []
    for field in descr:
        if not isinstance(field, list) or len(field) not in (2, 3):
            raise ValueError("bad structured field")
        name, sub = field[0], field[1]
        if not isinstance(name, str):
            raise ValueError("bad field name")
        if isinstance(sub, str):
            _dtype_from_string(sub)
        else:
            sub = _descr_from_json(sub, depth + 1)
        if len(field) == 3:
            if not isinstance(field[2], list) or not all(
                isinstance(n, int) and n >= 0 for n in field[2]
            ):
                raise ValueError("bad subarray shape")
            fields.append((name, sub, tuple(field[2])))
        else:
            fields.append((name, sub))
    return fields


_json_cache: dict[Any, Any] = {}
#: The same cache by identity: hashing a structured dtype walks its fields (a forest's
#: node arrays all share one dtype object, looked up thousands of times per save).
_json_by_id: dict[int, tuple[Any, Any]] = {}


def dtype_to_json(dtype: Any) -> Any:
    """Inverse of :func:`storage_dtype` (descr tuples become JSON lists); cached."""
    hit = _json_by_id.get(id(dtype))
    if hit is not None and hit[0] is dtype:
        return hit[1]
    import numpy as np

    try:
        value = _json_cache[dtype]
    except (KeyError, TypeError):
        value = _tuples_to_lists(np.lib.format.dtype_to_descr(dtype))
        if len(_json_cache) < 1024:
            _json_cache[dtype] = value
    if len(_json_by_id) < 1024:  # the entry keeps the dtype alive: its id stays its own
        _json_by_id[id(dtype)] = (dtype, value)
    return value


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value
