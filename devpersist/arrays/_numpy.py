"""numpy arrays: every non-object dtype, any order, byte order and writeability.

Arrays of ``ml_dtypes``' types (bfloat16, float8..., what ``np.asarray`` gives for a JAX
array) are stored as unsigned integers with the type's name in ``meta["dtype"]``, and
viewed as that type again on load (which then needs ``ml_dtypes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import CHUNK_BYTES, ArrayHandler, Encoded
from ._descr import dtype_from_descr
from ._dtypes import check, ml_dtype, ml_dtypes_name, native
from ._dtypes import storage_dtype as extended_storage


def contiguous_chunks(arr: np.ndarray, order: str) -> Any:
    """Bytes of ``arr`` in ``order``, without a copy when it is already contiguous."""

    def produce() -> Any:
        flat = arr if order == "C" else arr.T
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)  # one host copy of one array at a time
        view = flat.reshape(-1).view(np.uint8).data
        for start in range(0, view.nbytes, CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]

    return produce


_padding_cache: dict[np.dtype, np.ndarray | None] = {}


def padding_mask(dtype: np.dtype) -> np.ndarray | None:
    """The bytes of a structured item no field covers (None if there are none); cached."""
    if dtype.fields is None:
        return None
    try:
        return _padding_cache[dtype]
    except KeyError:
        pass
    mask = _padding(dtype)
    if len(_padding_cache) < 256:
        _padding_cache[dtype] = mask
    return mask


def _padding(dtype: np.dtype) -> np.ndarray | None:
    covered = np.zeros(dtype.itemsize, bool)

    def mark(dt: np.dtype, offset: int) -> None:
        if dt.subdtype is not None:
            sub, shape = dt.subdtype
            for k in range(int(np.prod(shape))):
                mark(sub, offset + k * sub.itemsize)
        elif dt.fields is not None:
            for field_dtype, field_offset, *_ in dt.fields.values():
                mark(field_dtype, offset + field_offset)
        else:
            covered[offset : offset + dt.itemsize] = True

    mark(dtype, 0)
    return None if covered.all() else ~covered


def zero_padding(arr: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """A C-ordered copy of ``arr`` whose padding bytes are zero."""
    clean = np.array(arr, order="C", copy=True)
    if clean.size:
        clean.reshape(-1).view(np.uint8).reshape(-1, arr.dtype.itemsize)[:, padding] = 0
    return clean


class NumpyHandler(ArrayHandler):
    def owns(self, tp: type) -> bool:
        return tp is np.ndarray or tp is np.memmap

    def stores(self, obj: Any) -> bool:
        return not obj.dtype.hasobject

    def encode(self, obj: np.ndarray) -> Encoded:
        f_order = obj.ndim > 1 and obj.flags.f_contiguous and not obj.flags.c_contiguous
        order = "F" if f_order else "C"
        meta: dict[str, Any] = {} if obj.flags.writeable else {"writeable": False}
        data = obj
        name = ml_dtypes_name(obj.dtype)
        if name is not None:  # numpy cannot describe it: store the bits
            data = obj.view(extended_storage(name))
            meta["dtype"] = name
        chunks = contiguous_chunks(data, order)
        padding = padding_mask(obj.dtype)
        if padding is not None:  # never write uninitialized memory (leaks, nondeterminism)
            order = "C"

            def chunks() -> Any:
                return contiguous_chunks(zero_padding(data, padding), "C")()

        return Encoded(
            dtype=data.dtype,
            shape=obj.shape,
            order=order,
            device="cpu",
            meta=meta,
            chunks=chunks,
            nbytes=obj.nbytes,
        )

    def decode(self, host: np.ndarray, entry: dict[str, Any], device: str | None) -> Any:
        meta = entry.get("meta", {})
        name = meta.get("dtype")
        if name is not None:
            host = native(host).view(ml_dtype(check(name, host.dtype)))
        if meta.get("writeable") is False:
            host.flags.writeable = False
        return host

    def maps(self, entry: dict[str, Any], device: str | None) -> bool:
        return True

    def decode_mapped(self, host: np.ndarray, entry: dict[str, Any], device: str | None) -> Any:
        host.flags.writeable = False  # a view of the file: read-only, as documented
        return self.decode(host, entry, device)

    def accepts(self, dtype: Any) -> bool:
        return not dtype.hasobject

    def from_numpy(self, array: Any, device: str) -> Any:
        return np.asarray(array)


def empty_host(entry: dict[str, Any]) -> np.ndarray:
    """A fresh host array with the stored dtype, shape and order of ``entry``."""
    shape, dtype = tuple(entry["shape"]), dtype_from_descr(entry["dtype"])
    return np.empty(shape, dtype=dtype, order=entry["order"])


def host_bytes(arr: np.ndarray) -> memoryview:
    """A writable byte view over a freshly allocated array (contiguous in its order)."""
    flat = arr if arr.flags.c_contiguous else arr.T
    return flat.reshape(-1).view(np.uint8).data


__all__ = ["NumpyHandler", "contiguous_chunks", "empty_host", "host_bytes"]
