"""numpy arrays: every non-object dtype, any order, byte order and writeability."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._format import dtype_to_json, storage_dtype
from ._base import CHUNK_BYTES, ArrayHandler, Encoded


def contiguous_chunks(arr: np.ndarray, order: str) -> Any:
    """Bytes of ``arr`` in ``order``, without a copy when it is already contiguous."""

    def produce() -> Any:
        flat = arr if order == "C" else arr.T
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)  # one host copy of one array at a time
        view = memoryview(flat.reshape(-1).view(np.uint8))
        for start in range(0, view.nbytes, CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]

    return produce


class NumpyHandler(ArrayHandler):
    namespace = "numpy"
    modules = ("numpy",)
    install = "numpy"

    def owns(self, tp: type) -> bool:
        return tp is np.ndarray or tp is np.memmap

    def stores(self, obj: Any) -> bool:
        return not obj.dtype.hasobject

    def encode(self, obj: np.ndarray) -> Encoded:
        order = "F" if obj.ndim > 1 and obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        meta = {} if obj.flags.writeable else {"writeable": False}
        return Encoded(
            dtype=obj.dtype,
            shape=obj.shape,
            order=order,
            device="cpu",
            meta=meta,
            chunks=contiguous_chunks(obj, order),
            nbytes=obj.nbytes,
        )

    def decode(self, host: np.ndarray, entry: dict[str, Any], device: str | None) -> Any:
        if entry.get("meta", {}).get("writeable") is False:
            host.flags.writeable = False
        return host

    def from_numpy(self, array: Any, device: str) -> Any:
        return np.asarray(array)


def empty_host(entry: dict[str, Any]) -> np.ndarray:
    """A fresh host array with the stored dtype, shape and order of ``entry``."""
    return np.empty(tuple(entry["shape"]), dtype=storage_dtype(entry["dtype"]), order=entry["order"])


def host_bytes(arr: np.ndarray) -> memoryview:
    """A writable byte view over a freshly allocated array (contiguous in its order)."""
    flat = arr if arr.flags.c_contiguous else arr.T
    return memoryview(flat.reshape(-1).view(np.uint8))


__all__ = ["NumpyHandler", "contiguous_chunks", "dtype_to_json", "empty_host", "host_bytes"]
