"""JAX arrays on one device: every dtype, ``ml_dtypes``' ones (bfloat16, float8...) too.

Devices are spelled ``"<platform>:<id>"`` from ``jax.Device.platform`` and ``.id``:
``"cpu:0"``, ``"gpu:0"`` (CUDA and ROCm both say ``gpu``; ``"cuda:N"`` and ``"rocm:N"``
are accepted as aliases), ``"tpu:0"``. Arrays sharded over several devices are refused
(the sharding would be lost); gather them with ``jax.device_get`` or put them on one
device first.

JAX has no 64-bit types unless ``jax_enable_x64`` is set: loading a float64 file without
it raises instead of silently halving the precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import DeviceError, UnsupportedObjectError
from . import _dtypes
from ._base import ArrayHandler, Encoded, imported
from ._numpy import contiguous_chunks

if TYPE_CHECKING:
    from ._base import ArrayEntry, HostArray

_ALIASES = {"cuda": "gpu", "rocm": "gpu"}


def _jax() -> Any:
    import jax

    return jax


def device_string(device: Any) -> str:
    return f"{device.platform}:{device.id}"


def _parse(device: str) -> tuple[str, int | None]:
    platform, _, index = device.partition(":")
    platform = _ALIASES.get(platform, platform)
    if not platform or (index and not index.isdigit()):
        raise ValueError(f"not a JAX device: {device!r}")
    return platform, int(index) if index else None


def _find(device: str) -> Any:
    """The ``jax.Device`` for ``device``, or None."""
    jax = _jax()
    try:
        platform, index = _parse(device)
        devices = jax.devices(platform)
    except (RuntimeError, ValueError):
        return None
    if index is None:
        return devices[0] if devices else None
    return next((d for d in devices if d.id == index), None)


class JaxHandler(ArrayHandler):
    label = "JAX"
    has_devices = True
    xp_module = "jax.numpy"
    host_device = "cpu:0"

    def owns(self, tp: type) -> bool:
        array = imported("jax", "Array")
        # ArrayImpl is the concrete array; tracers are virtual subclasses of jax.Array
        return array is not None and tp.__name__ == "ArrayImpl" and issubclass(tp, array)

    def array_types(self) -> tuple[type, ...]:
        array = imported("jax", "Array")
        return (array,) if array is not None else ()

    def stores(self, obj: Any) -> bool:
        reason = None
        if obj.is_deleted():
            reason = "the array was deleted (donated to a computation)"
        elif not obj.is_fully_addressable or len(obj.devices()) != 1:
            reason = (
                f"arrays sharded over {len(obj.devices())} devices are not supported; "
                "put it on one device (jax.device_put) first"
            )
        if reason is not None:
            raise UnsupportedObjectError(reason, type_name="jax.Array")
        return True

    def encode(self, obj: Any) -> Encoded:
        dtype = np.dtype(obj.dtype)
        meta: dict[str, Any] = {}
        name = _dtypes.ml_dtypes_name(dtype)
        if name is not None:
            dtype = _dtypes.storage_dtype(name)
            meta["dtype"] = name
        (device,) = obj.devices()
        shape = tuple(obj.shape)

        def produce() -> Any:
            host = np.asarray(obj)  # the one host copy (none for CPU arrays)
            return contiguous_chunks(host.view(dtype) if name else host, "C")()

        return Encoded(
            dtype=dtype,
            shape=shape,
            order="C",
            device=device_string(device),
            meta=meta,
            chunks=produce,
        )

    def decode(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        host = _dtypes.native(host)
        name = entry.get("meta", {}).get("dtype")
        if name is not None:
            host = host.view(_dtypes.ml_dtype(_dtypes.check(name, host.dtype)))
        else:
            self.require(host, entry)
        return self._put(host, self.target(entry, device))

    def build(self, array: HostArray, device: str) -> Any:
        return self._put(array, device)

    def _put(self, host: np.ndarray, device: str) -> Any:
        target = _find(device)
        if target is None:
            raise DeviceError(f"JAX has no device {device!r} in this process")
        out = _jax().device_put(host, target)
        if out.dtype != host.dtype:
            raise DeviceError(
                f"JAX turned a {host.dtype} array into {out.dtype}: enable 64-bit types "
                "(jax.config.update('jax_enable_x64', True)) before loading"
            )
        return out

    def device_available(self, device: str) -> bool:
        return _find(device) is not None

    def normalize_device(self, device: str) -> str:
        found = _find(device)
        return device_string(found) if found is not None else device

    def device_name(self, device: str) -> str | None:
        found = _find(device)
        return None if found is None or found.platform == "cpu" else str(found.device_kind)

    def device_object(self, device: str) -> Any:
        found = _find(device)
        if found is None:
            raise DeviceError(f"JAX has no device {device!r} in this process")
        return found
