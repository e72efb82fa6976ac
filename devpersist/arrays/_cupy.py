"""CuPy arrays: C or Fortran order, on any CUDA device (``"cuda:N"``).

CuPy has no host device: where the saved GPU does not exist, and for ``device="cpu"``,
arrays become numpy arrays (``host_device = None``). The host copy is made when the
writer reaches the array, through one pinned staging buffer of ``CHUNK_BYTES``
(``ndarray.get(out=...)``), so saving never holds a whole host copy of a device array.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import CHUNK_BYTES, ArrayHandler, Encoded, imported

if TYPE_CHECKING:
    from ._base import HostArray

_DEVICE_RE = re.compile(r"cuda(?::(\d+))?\Z")


def _cupy() -> Any:
    import cupy

    return cupy


def _index(device: str) -> int | None:
    match = _DEVICE_RE.match(device)
    if match is None:
        raise ValueError(f"not a CuPy device: {device!r} (expected 'cuda:N')")
    return int(match.group(1)) if match.group(1) is not None else None


class CupyHandler(ArrayHandler):
    label = "CuPy"
    has_devices = True
    host_device = None
    device_classes = (("cupy.cuda", "Device"),)

    def owns(self, tp: type) -> bool:
        return tp is imported("cupy", "ndarray")

    def array_types(self) -> tuple[type, ...]:
        array = imported("cupy", "ndarray")
        return (array,) if array is not None else ()

    def device_string(self, device: Any) -> str:
        return f"cuda:{device.id}"

    def encode(self, obj: Any) -> Encoded:
        f_order = obj.ndim > 1 and obj.flags.f_contiguous and not obj.flags.c_contiguous
        order = "F" if f_order else "C"
        return Encoded(
            dtype=np.dtype(obj.dtype),
            shape=tuple(obj.shape),
            order=order,
            device=f"cuda:{obj.device.id}",
            chunks=lambda: host_chunks(obj, order),
            nbytes=obj.nbytes,
        )

    def build(self, array: HostArray, device: str) -> Any:
        cupy = _cupy()
        with cupy.cuda.Device(self._device_index(device)):
            return cupy.asarray(array)  # keeps C or Fortran order

    def device_available(self, device: str) -> bool:
        try:
            index = _index(device)
            count = _cupy().cuda.runtime.getDeviceCount()
        except Exception:
            return False
        return bool((index or 0) < count)

    def normalize_device(self, device: str) -> str:
        return f"cuda:{self._device_index(device)}"

    def device_object(self, device: str) -> Any:
        return _cupy().cuda.Device(self._device_index(device))

    def device_name(self, device: str) -> str | None:
        try:
            props = _cupy().cuda.runtime.getDeviceProperties(self._device_index(device))
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            return None

    def _device_index(self, device: str) -> int:
        index = _index(device)
        return _cupy().cuda.runtime.getDevice() if index is None else index


def host_chunks(array: Any, order: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[memoryview]:
    """The bytes of ``array`` in ``order``, copied ``chunk_bytes`` at a time."""
    cupy = sys.modules["cupy"]
    with array.device:
        flat = cupy.ascontiguousarray(array if order == "C" else array.T)
        flat = flat.reshape(-1).view(cupy.uint8)
    total = flat.size
    if total == 0:
        return
    step = min(total, chunk_bytes)
    staging = _staging_buffer(step)
    for start in range(0, total, step):
        n = min(step, total - start)
        flat[start : start + n].get(out=staging[:n])  # blocking: the chunk is complete
        yield staging[:n].data


def _staging_buffer(nbytes: int) -> np.ndarray:
    try:
        import cupyx

        return cupyx.empty_pinned((nbytes,), dtype=np.uint8)  # type: ignore[no-any-return]
    except Exception:
        return np.empty(nbytes, dtype=np.uint8)
