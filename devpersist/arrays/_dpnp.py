"""dpnp arrays (Intel's Data Parallel Extension for NumPy) on SYCL devices.

The device is the SYCL filter string of ``array.sycl_device`` (``"level_zero:gpu:0"``,
``"opencl:cpu:0"``); any filter selector dpctl understands (``"gpu"``, ``"cpu"``) may be
asked for on load. dpnp has no host device of its own: where the saved device does not
exist, the fallback gives numpy arrays (``host_device = None``); ``device="cpu"`` gives a
host SYCL device when there is one (:meth:`DpnpHandler.host`), else numpy. The USM allocation type
is not kept: arrays are rebuilt as ``usm_type="device"``, dpnp's default.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._exceptions import DeviceError
from ._base import ArrayHandler, Encoded
from ._dtypes import native
from ._numpy import contiguous_chunks


def _dpnp() -> Any:
    import dpnp

    return dpnp


def _sycl_device(device: str) -> Any:
    import dpctl

    return dpctl.SyclDevice(device)


class DpnpHandler(ArrayHandler):
    namespace = "dpnp"
    modules = ("dpnp",)
    label = "dpnp"
    install = "dpnp"
    has_devices = True
    host_device = None

    def owns(self, tp: type) -> bool:
        dpnp = sys.modules.get("dpnp")
        return dpnp is not None and tp is dpnp.ndarray

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
        shape = tuple(obj.shape)

        def produce() -> Any:
            return contiguous_chunks(_dpnp().asnumpy(obj), "C")()  # the one host copy

        return Encoded(
            dtype=dtype,
            shape=shape,
            order="C",
            device=obj.sycl_device.filter_string,
            chunks=produce,
        )

    def decode(self, host: Any, entry: dict[str, Any], device: str | None) -> Any:
        self.require(host, entry)
        return self.from_numpy(host, entry["device"] if device is None else device)

    def from_numpy(self, array: Any, device: str) -> Any:
        array = native(np.asarray(array))
        if not self.accepts(array.dtype):
            raise DeviceError(f"dpnp has no dtype for numpy {array.dtype} arrays")
        return _dpnp().asarray(array, device=device)

    def device_available(self, device: str) -> bool:
        try:
            _sycl_device(device)
        except Exception:
            return False
        return True

    def normalize_device(self, device: str) -> str:
        return str(_sycl_device(device).filter_string)

    def host(self) -> tuple[str, str]:
        """A SYCL device on the host CPU (OpenCL's CPU runtime) keeps dpnp arrays on the
        host; without one they become numpy arrays."""
        try:
            return "dpnp", str(_sycl_device("cpu").filter_string)
        except Exception:
            return "numpy", "cpu"

    def device_object(self, device: str) -> Any:
        return _sycl_device(device)

    def device_name(self, device: str) -> str | None:
        try:
            return str(_sycl_device(device).name)
        except Exception:
            return None
