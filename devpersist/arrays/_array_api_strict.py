"""array-api-strict arrays: the reference array API, with fake devices.

array-api-strict 2.x has devices ``CPU_DEVICE``, ``device1``, ``device2``, ``no_float64``
and ``no_x64`` (``Device._device`` holds the name). Only ``CPU_DEVICE`` arrays convert to
numpy, so the host copy goes through ``to_device(CPU_DEVICE)``, as it would for a real
accelerator. The library has no float16 and no writeability flag.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._exceptions import DeviceError
from ._base import ArrayHandler, Encoded
from ._dtypes import native
from ._numpy import contiguous_chunks

_HOST = "CPU_DEVICE"
_DTYPES = frozenset("b1 i1 i2 i4 i8 u1 u2 u4 u8 f4 f8 c8 c16".split())


def _xp() -> Any:
    import array_api_strict

    return array_api_strict


def _array_type() -> Any:
    module = sys.modules.get("array_api_strict._array_object")
    return getattr(module, "Array", None)


def fortran_like(host: np.ndarray) -> bool:
    """Strides growing with the axis (a transposed matrix, or a slice of one)."""
    if host.ndim < 2 or host.flags.c_contiguous or host.size <= 1:
        return False
    strides = [abs(s) for s, n in zip(host.strides, host.shape) if n > 1]
    return strides == sorted(strides)


class ArrayApiStrictHandler(ArrayHandler):
    namespace = "array_api_strict"
    modules = ("array_api_strict",)
    label = "array-api-strict"
    install = "array-api-strict"
    has_devices = True
    host_device = _HOST

    def owns(self, tp: type) -> bool:
        return tp is _array_type()

    def array_types(self) -> tuple[type, ...]:
        array = _array_type()
        return (array,) if array is not None else ()

    def encode(self, obj: Any) -> Encoded:
        dtype = np.dtype(obj.dtype._np_dtype)  # the public DType has no numpy spelling
        shape = tuple(obj.shape)
        xp = sys.modules["array_api_strict"]
        # the library wraps a numpy array on every device: this is a view, not a copy
        host = np.asarray(obj.to_device(xp.Device(_HOST)))
        # keep a Fortran layout (PCA's components_ is a transposed view): matmul rounds
        # differently on another layout, and loaded models must compute bit for bit
        order = "F" if fortran_like(host) else "C"
        return Encoded(
            dtype=dtype,
            shape=shape,
            order=order,
            device=obj.device._device,
            chunks=contiguous_chunks(host, order),
        )

    def decode(self, host: Any, entry: dict[str, Any], device: str | None) -> Any:
        self.require(host, entry)
        return self.from_numpy(host, entry["device"] if device is None else device)

    def accepts(self, dtype: Any) -> bool:
        return f"{dtype.kind}{dtype.itemsize}" in _DTYPES

    def from_numpy(self, array: Any, device: str) -> Any:
        xp = _xp()
        array = native(np.asarray(array))
        if not self.accepts(array.dtype):
            raise DeviceError(f"array-api-strict has no dtype for numpy {array.dtype} arrays")
        try:
            return xp.asarray(array, device=xp.Device(device))  # wraps, no copy
        except ValueError as exc:  # e.g. float64 on the no_float64 device
            raise DeviceError(f"cannot place a {array.dtype} array on {device!r}: {exc}") from exc

    def device_available(self, device: str) -> bool:
        try:
            _xp().Device(device)
        except (ValueError, TypeError):
            return False
        return True

    def device_object(self, device: str) -> Any:
        return _xp().Device(device)
