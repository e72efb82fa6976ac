"""Element types as the manifest spells them: the closed set a file may name.

An array entry's ``dtype`` is numpy's descriptor in JSON: a string such as ``"<f4"``
for plain types, a list of ``[name, type]`` / ``[name, type, shape]`` fields for a
structured type. Reading one (:func:`dtype_from_descr`) accepts numpy's own spelling of
booleans, integers, floats, complex numbers, bytes, unicode, void and datetimes only:
never objects, never anything that runs code. :func:`dtype_to_descr` is the inverse used
by the writer. Both sit below the container (``_format`` validates entries with them)
and the handlers (which size and allocate arrays with them); they import nothing of
devpersist but its errors.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import FormatError, shown

if TYPE_CHECKING:
    from ._base import ArrayEntry

#: The string descriptors a file may use (with ``<``, ``>``, ``|``, ``=`` or no order).
DESCR_RE = re.compile(r"[<>|=]?(b1|[iuf][1248]|f16|c(8|16|32)|[SUV]\d{1,9}|[mM]8(\[\w{1,6}\])?)\Z")


def _dtype_from_string(descr: str) -> np.dtype[Any]:
    """A dtype string of the closed set. With ``<``, ``>`` or ``|`` it must be numpy's own
    spelling (``|i4`` and ``<b1`` are not); ``=`` or nothing means native order."""
    if not DESCR_RE.match(descr):
        raise ValueError(descr)
    dtype = np.dtype(descr)
    order = descr[0] if descr[0] in "<>|=" else ""
    if order in ("", "="):
        if dtype.str[1:] != descr[len(order) :]:
            raise ValueError(descr)
    elif dtype.str != descr:
        raise ValueError(descr)
    return dtype


_dtype_cache: dict[str, np.dtype[Any]] = {}
_by_identity: dict[int, tuple[Any, np.dtype[Any]]] = {}


def dtype_from_descr(descr: Any, where: str = "array") -> np.dtype[Any]:
    """The numpy dtype of stored bytes, from a closed set: never objects, never code.

    Parameters
    ----------
    descr : str or list
        The entry's ``dtype`` as read from the manifest (file-supplied).
    where : str
        Names the array in the error message.

    Returns
    -------
    numpy.dtype
        Parsed dtypes are cached by their JSON text (a forest has hundreds of node arrays
        with the same structured dtype).

    Raises
    ------
    FormatError
        For anything outside the closed set, object dtypes included.
    """
    if isinstance(descr, str):
        key = descr
    else:
        # a version 2 table's rows share one list per distinct dtype, and a forest's
        # structured node dtype costs ~3 µs to repr: that list object is checked first.
        # The entry keeps the list alive (its id cannot be reused while cached); a
        # manifest's lists are never modified once validated.
        seen = _by_identity.get(id(descr))
        if seen is not None and seen[0] is descr:
            return seen[1]
        key = repr(descr)  # C speed, exact for JSON data
    dtype = _dtype_cache.get(key)
    if dtype is None:
        dtype = _parse_dtype(descr, where)
        if len(_dtype_cache) < 1024:
            _dtype_cache[key] = dtype
    if not isinstance(descr, str):
        if len(_by_identity) >= 256:  # each load brings new lists: keep the recent ones
            _by_identity.clear()
        _by_identity[id(descr)] = (descr, dtype)
    return dtype


def _parse_dtype(descr: Any, where: str) -> np.dtype[Any]:
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


def _descr_from_json(descr: Any, depth: int = 0) -> list[tuple[Any, ...]]:
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


_json_cache: dict[np.dtype[Any], Any] = {}
#: The same cache by identity: hashing a structured dtype walks its fields (a forest's
#: node arrays all share one dtype object, looked up thousands of times per save).
_json_by_id: dict[int, tuple[np.dtype[Any], Any]] = {}


def dtype_to_descr(dtype: np.dtype[Any]) -> Any:
    """The manifest's spelling of ``dtype``: inverse of :func:`dtype_from_descr`.

    numpy's descriptor tuples become JSON lists; cached per dtype.
    """
    hit = _json_by_id.get(id(dtype))
    if hit is not None and hit[0] is dtype:
        return hit[1]
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


def decoded_size(entry: ArrayEntry) -> int:
    """The bytes of an array entry once decoded (``shape × itemsize``)."""
    count = 1
    for n in entry["shape"]:
        count *= n
    return count * int(dtype_from_descr(entry["dtype"]).itemsize)
