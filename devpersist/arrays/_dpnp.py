"""dpnp arrays (Intel's Data Parallel Extension for NumPy) on SYCL devices.

A dpnp array is saved with its SYCL device's filter string as ``device``
(``"opencl:cpu:0"``, ``"level_zero:gpu:0"``: backend, device type and index) and the
device's name in the file's ``environment.devices``; its USM allocation type
(``"device"``, ``"shared"`` or ``"host"``) is kept in ``meta["usm_type"]`` and
recreated on load. Any filter selector dpctl understands (``"gpu"``, ``"opencl:cpu"``)
may be asked for with ``device=``.

``device="cpu"`` (and the fallback for a saved device that does not exist here) gives the
host SYCL device, a CPU device such as the one Intel's OpenCL CPU runtime provides, when
there is one (:meth:`DpnpHandler.host`), else numpy arrays. A process without dpnp or
dpctl loads these arrays with ``namespace="numpy"`` (nothing here is imported then).

Arrays move between the device and the host through bounded staging buffers
(``STAGE_BYTES`` at a time), as torch's do: saving a large array costs one chunk of host
memory at a time, not the array; loading fills the device array chunk by chunk from the
file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import DeviceError, FormatError
from ._base import ArrayHandler, Encoded, Stream, imported
from ._descr import decoded_size, dtype_from_descr
from ._dtypes import native

if TYPE_CHECKING:
    from ._base import ArrayEntry, HostArray

#: Size of a host staging buffer.
STAGE_BYTES = 32 * 2**20
#: Arrays under this size are copied in one piece.
STREAM_MIN_BYTES = 2**20
#: USM allocation types dpnp can create (``usm_type=``); the aspect a device needs for each.
USM_TYPES = {
    "device": "usm_device_allocations",
    "shared": "usm_shared_allocations",
    "host": "usm_host_allocations",
}


def _dpnp() -> Any:
    import dpnp

    return dpnp


def _sycl_device(device: str) -> Any:
    import dpctl

    return dpctl.SyclDevice(device)


class DpnpHandler(ArrayHandler):
    label = "dpnp"
    has_devices = True

    @property
    def host_device(self) -> str | None:  # type: ignore[override]
        """The host SYCL device where there is one (the fallback target), else None:
        arrays then become numpy arrays. Only asked once dpnp is known to be installed."""
        try:
            return str(_sycl_device("cpu").filter_string)
        except Exception:
            return None

    def host(self) -> tuple[str, str]:
        """A SYCL device on the host CPU (OpenCL's CPU runtime) keeps dpnp arrays on the
        host; without one they become numpy arrays."""
        device = self.host_device
        return ("numpy", "cpu") if device is None else ("dpnp", device)

    # -- saving ------------------------------------------------------------------------

    def owns(self, tp: type) -> bool:
        return tp is imported("dpnp", "ndarray")

    def array_types(self) -> tuple[type, ...]:
        found = []
        for module in ("dpnp", "dpnp.tensor", "dpctl.tensor"):
            mod = sys.modules.get(module)
            tp = getattr(mod, "ndarray" if module == "dpnp" else "usm_ndarray", None)
            if isinstance(tp, type):
                found.append(tp)
        return tuple(found)

    def encode(self, obj: Any) -> Encoded:
        dtype = np.dtype(obj.dtype)
        return Encoded(
            dtype=dtype,
            shape=tuple(obj.shape),
            order="C",
            device=str(obj.sycl_device.filter_string),
            meta={"usm_type": str(obj.usm_type)},
            chunks=lambda: host_chunks(obj),
        )

    # -- loading -----------------------------------------------------------------------

    def decode(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        self.require(host, entry)
        target = self.target(entry, device)
        usm_type = self._usm_type(entry, target)
        return _dpnp().asarray(native(host), device=target, usm_type=usm_type)

    def decode_streamed(self, entry: ArrayEntry, device: str | None, stream: Stream) -> Any | None:
        """The device array filled from the file through two host staging buffers (no
        host copy of the whole array)."""
        stored = dtype_from_descr(entry["dtype"])
        nbytes = decoded_size(entry)
        if nbytes < STREAM_MIN_BYTES or not stored.isnative or entry["order"] != "C":
            return None
        if not self.accepts(stored):
            return None  # decode() raises the error that names the array
        target = self.target(entry, device)
        usm_type = self._usm_type(entry, target)
        dpnp = _dpnp()
        count = nbytes // stored.itemsize
        flat = dpnp.empty((count,), dtype=stored, device=target, usm_type=usm_type)
        step = min(STAGE_BYTES, nbytes)
        buffers = [np.empty(step, dtype=np.uint8) for _ in range(2)]

        def consume(start: int, slot: int, size: int) -> None:
            # chunks hold whole elements (STAGE_BYTES is a multiple of every itemsize)
            first = start // stored.itemsize
            values = buffers[slot][:size].view(stored)
            flat[first : first + values.size] = values  # a blocking copy: the buffer is free

        stream([b.data for b in buffers], consume, lambda token: None)
        return flat.reshape(tuple(entry["shape"]))

    def _usm_type(self, entry: ArrayEntry, device: str) -> str:
        """The recorded USM type, checked against what ``device`` can allocate."""
        where = entry.get("path", "a dpnp array")
        usm_type = entry.get("meta", {}).get("usm_type", "device")
        if usm_type not in USM_TYPES:
            raise FormatError(
                f"{where}: unknown USM type {str(usm_type)[:40]!r} in meta.usm_type "
                f"(dpnp has {', '.join(USM_TYPES)})"
            )
        sycl = _sycl_device(device)
        if not getattr(sycl, "has_aspect_" + USM_TYPES[usm_type], True):
            raise DeviceError(
                f"{where}: was saved as a {usm_type!r} USM allocation (meta.usm_type), which "
                f"{sycl.filter_string} cannot allocate; load with device= another SYCL "
                "device or namespace='numpy'"
            )
        return str(usm_type)

    def build(self, array: HostArray, device: str) -> Any:
        return _dpnp().asarray(array, device=device)

    # -- devices -----------------------------------------------------------------------

    def device_available(self, device: str) -> bool:
        try:
            _sycl_device(device)
        except Exception:
            return False
        return True

    def normalize_device(self, device: str) -> str:
        return str(_sycl_device(device).filter_string)

    def device_object(self, device: str) -> Any:
        return _sycl_device(device)

    def device_name(self, device: str) -> str | None:
        try:
            return str(_sycl_device(device).name)
        except Exception:
            return None


def host_chunks(array: Any, chunk_bytes: int | None = None) -> Iterator[memoryview]:
    """The bytes of ``array``'s values in C order, at most ``chunk_bytes`` at a time.

    A view is made contiguous on its device first (one device copy); then each chunk is
    copied to the host on its own, so the host holds one chunk, not the array.
    """
    dpnp = sys.modules["dpnp"]
    if array.size == 0:
        return
    flat = dpnp.ravel(array)  # C order; a copy only for views
    itemsize = int(np.dtype(array.dtype).itemsize)
    step = max(1, (STAGE_BYTES if chunk_bytes is None else chunk_bytes) // itemsize)
    for start in range(0, int(flat.size), step):
        host = np.ascontiguousarray(dpnp.asnumpy(flat[start : start + step]))
        yield host.reshape(-1).view(np.uint8).data
