"""array-api-strict arrays: the reference array API, with fake devices.

array-api-strict 2.x has devices ``CPU_DEVICE``, ``device1``, ``device2``, ``no_float64``
and ``no_x64`` (``Device._device`` holds the name). Only ``CPU_DEVICE`` arrays convert to
numpy, so the host copy goes through ``to_device(CPU_DEVICE)``, as it would for a real
accelerator. The library has no float16 and no writeability flag.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import DeviceError
from ._base import ArrayHandler, Encoded, imported
from ._dtypes import STANDARD_CODES
from ._numpy import contiguous_chunks

if TYPE_CHECKING:
    from ._base import HostArray

_HOST = "CPU_DEVICE"


def _xp() -> Any:
    import array_api_strict

    return array_api_strict


def _array_type() -> type | None:
    return imported("array_api_strict._array_object", "Array")


def fortran_like(host: np.ndarray) -> bool:
    """Strides growing with the axis (a transposed matrix, or a slice of one)."""
    if host.ndim < 2 or host.flags.c_contiguous or host.size <= 1:
        return False
    strides = [abs(s) for s, n in zip(host.strides, host.shape) if n > 1]
    return strides == sorted(strides)


class ArrayApiStrictHandler(ArrayHandler):
    label = "array-api-strict"
    has_devices = True
    host_device = _HOST
    dtypes = STANDARD_CODES - {"f2"}  # no float16
    device_classes = (("array_api_strict", "Device"),)

    def owns(self, tp: type) -> bool:
        return tp is _array_type()

    def device_string(self, device: Any) -> str:
        return str(device._device)  # the public Device has no other spelling of its name

    def array_types(self) -> tuple[type, ...]:
        array = _array_type()
        return (array,) if array is not None else ()

    def encode(self, obj: Any) -> Encoded:
        dtype = np.dtype(obj.dtype._np_dtype)  # the public DType has no numpy spelling
        shape = tuple(obj.shape)
        from array_api_compat import to_device

        xp = sys.modules["array_api_strict"]
        # the library wraps a numpy array on every device: this is a view, not a copy
        host = np.asarray(to_device(obj, xp.Device(_HOST)))
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

    def build(self, array: HostArray, device: str) -> Any:
        xp = _xp()
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
