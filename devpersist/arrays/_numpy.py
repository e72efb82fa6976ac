"""numpy arrays: every non-object dtype, any order, byte order and writeability.

Arrays of ``ml_dtypes``' types (bfloat16, float8..., what ``np.asarray`` gives for a JAX
array) are stored as unsigned integers with the type's name in ``meta["dtype"]``, and
viewed as that type again on load (which then needs ``ml_dtypes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import CHUNK_BYTES, ArrayHandler, Encoded
from ._descr import dtype_from_descr
from ._dtypes import check, ml_dtype, ml_dtypes_name, native
from ._dtypes import storage_dtype as extended_storage

if TYPE_CHECKING:
    from ._base import ArrayEntry, HostArray


def contiguous_chunks(arr: np.ndarray, order: str) -> Callable[[], Iterator[memoryview]]:
    """Bytes of ``arr`` in ``order``, without a copy when it is already contiguous."""

    def produce() -> Iterator[memoryview]:
        flat = arr if order == "C" else arr.T
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)  # one host copy of one array at a time
        view = flat.reshape(-1).view(np.uint8).data
        for start in range(0, view.nbytes, CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]

    return produce


_padding_cache: dict[np.dtype, np.ndarray | None] = {}

#: Bytes of a structured array zeroed and handed to the writer at a time: small enough
#: that the copy, the checksum and the write all find it in the cache.
PADDED_PIECE = 2**20


def padding_keep(dtype: np.dtype) -> np.ndarray | None:
    """None if every byte of a ``dtype`` item belongs to a field; else the item's mask,
    as machine words (all ones over field bytes, zero over padding), to AND items with.
    Cached per dtype."""
    if dtype.fields is None:
        return None
    try:
        return _padding_cache[dtype]
    except KeyError:
        pass
    keep = _padding(dtype)
    if len(_padding_cache) < 256:
        _padding_cache[dtype] = keep
    return keep


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
    if covered.all():
        return None
    word = next(w for w in (8, 4, 2, 1) if dtype.itemsize % w == 0)
    return np.where(covered, np.uint8(0xFF), np.uint8(0)).view(f"<u{word}")


def zeroed_chunks(arr: np.ndarray, keep: np.ndarray) -> Callable[[], Iterator[memoryview]]:
    """Bytes of ``arr`` in C order with its padding bytes zeroed (``keep``: from
    :func:`padding_keep`).

    The items are ANDed with ``keep``, :data:`PADDED_PIECE` bytes at a time, into one
    buffer that is reused for every piece (the writer is done with a chunk before it
    asks for the next): one pass over the data, no full copy of the array.
    """

    def produce() -> Iterator[memoryview]:
        flat = np.ascontiguousarray(arr).reshape(-1)  # a view unless not C-contiguous
        count = flat.shape[0]
        if count == 0:
            return
        words = keep.shape[0]
        source = flat.view(np.uint8).view(keep.dtype).reshape(count, words)
        rows = max(1, PADDED_PIECE // arr.dtype.itemsize)
        buf = np.empty((min(rows, count), words), keep.dtype)
        data = buf.reshape(-1).view(np.uint8).data
        for start in range(0, count, rows):
            k = min(rows, count - start)
            np.bitwise_and(source[start : start + k], keep, out=buf[:k])
            yield data[: k * arr.dtype.itemsize]

    return produce


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
        keep = padding_keep(obj.dtype)
        if keep is not None:  # never write uninitialized memory (leaks, nondeterminism)
            order = "C"
            chunks = zeroed_chunks(data, keep)

        return Encoded(
            dtype=data.dtype,
            shape=obj.shape,
            order=order,
            device="cpu",
            meta=meta,
            chunks=chunks,
            nbytes=obj.nbytes,
        )

    def decode(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        meta = entry.get("meta", {})
        name = meta.get("dtype")
        if name is not None:
            host = native(host).view(ml_dtype(check(name, host.dtype)))
        if meta.get("writeable") is False:
            host.flags.writeable = False
        return host

    def maps(self, entry: ArrayEntry, device: str | None) -> bool:
        return True

    def decode_mapped(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        host.flags.writeable = False  # a view of the file: read-only, as documented
        return self.decode(host, entry, device)

    def accepts(self, dtype: np.dtype[Any]) -> bool:
        return not dtype.hasobject

    def from_numpy(self, array: Any, device: str) -> Any:
        return np.asarray(array)


def empty_host(entry: ArrayEntry) -> np.ndarray:
    """A fresh host array with the stored dtype, shape and order of ``entry``."""
    shape, dtype = tuple(entry["shape"]), dtype_from_descr(entry["dtype"])
    return np.empty(shape, dtype=dtype, order=entry["order"])


def host_bytes(arr: np.ndarray) -> memoryview:
    """A writable byte view over a freshly allocated array (contiguous in its order)."""
    flat = arr if arr.flags.c_contiguous else arr.T
    return flat.reshape(-1).view(np.uint8).data


__all__ = ["NumpyHandler", "contiguous_chunks", "empty_host", "host_bytes"]
