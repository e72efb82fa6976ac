"""torch tensors and parameters: every dtype torch can store, on any device.

Saving never imports torch (an instance exists, so torch is in ``sys.modules``) and never
modifies the live tensor. The host copy of a device tensor is made when the writer
reaches it, one array at a time, through a staging buffer of ``CHUNK_BYTES`` (pinned for
CUDA, where a pageable device-to-host copy is about 40 times slower): saving a 10 GiB
tensor costs 64 MiB of host memory. Views are saved as their values (a contiguous copy),
conjugate and negative views resolved.

Dtypes numpy lacks (bfloat16, float8, complex32...) are stored as unsigned integers with
the name in ``meta["dtype"]`` (see :mod:`._dtypes`); ``requires_grad`` and
``torch.nn.Parameter`` are recorded in ``meta`` and restored. Loading builds the tensor
from the host bytes without a copy for CPU (``torch.from_numpy``) and moves it to its
device. Converting to numpy (``namespace="numpy"``) never imports torch; bfloat16 then
becomes float32, which holds every bfloat16 value exactly, since numpy has no bfloat16.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import FormatError, UnsupportedObjectError
from . import _dtypes
from ._base import ArrayHandler, Encoded, Stream, imported
from ._descr import decoded_size, dtype_from_descr

if TYPE_CHECKING:
    from ._base import ArrayEntry, HostArray

#: Size of a staging buffer; a device array moves through two of them.
STAGE_BYTES = 32 * 2**20
#: Device arrays under this size are copied in one piece, not staged.
STREAM_MIN_BYTES = 2**20

#: torch dtypes numpy has, by torch's name (the numpy name is the same)
_NATIVE = _dtypes.STANDARD_NAMES
#: torch dtypes numpy lacks, stored as unsigned integers of the same size
_EXTENDED = frozenset(
    "bfloat16 complex32 float4_e2m1fn_x2 float8_e4m3fn float8_e4m3fnuz float8_e5m2 "
    "float8_e5m2fnuz float8_e8m0fnu".split()
)
#: device types whose tensors hold data that ``Tensor.to("cpu")`` can read
_DEVICE_TYPES = ("cpu", "cuda", "xpu", "mps", "hpu", "mtia", "privateuseone")
#: Device types whose arrays load through staging buffers (CPU tensors are built
#: directly over the bytes read).
STREAMED = frozenset(_DEVICE_TYPES) - {"cpu"}


def _torch() -> Any:
    import torch

    return torch


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


class TorchHandler(ArrayHandler):
    has_devices = True
    host_device = "cpu"
    device_classes = (("torch", "device"),)
    subclass_hint = " (tensor.as_subclass(torch.Tensor))"

    # -- saving ------------------------------------------------------------------------

    def owns(self, tp: type) -> bool:
        return tp is imported("torch", "Tensor") or tp is imported("torch.nn", "Parameter")

    def array_types(self) -> tuple[type, ...]:
        tensor = imported("torch", "Tensor")
        return (tensor,) if tensor is not None else ()

    def stores(self, obj: Any) -> bool:
        torch = sys.modules["torch"]
        reason = None
        name = _dtype_name(obj.dtype)
        if obj.layout is not torch.strided:
            reason = f"tensors in the {obj.layout} layout are not supported; use .to_dense()"
        elif obj.is_nested:
            reason = "nested tensors are not supported"
        elif obj.is_quantized:
            reason = "quantized tensors are not supported; use .dequantize()"
        elif name not in _NATIVE and name not in _EXTENDED:
            reason = f"tensors of dtype {obj.dtype} are not supported"
        elif obj.device.type == "meta":
            reason = "tensors on the meta device have no data to save"
        elif obj.device.type not in _DEVICE_TYPES:
            reason = f"tensors on {obj.device.type!r} devices are not supported"
        if reason is not None:
            raise UnsupportedObjectError(reason, type_name=f"torch.{type(obj).__name__}")
        return True

    def encode(self, obj: Any) -> Encoded:
        name = _dtype_name(obj.dtype)
        meta: dict[str, Any] = {}
        if name in _NATIVE:
            dtype = np.dtype(name)
        else:
            dtype = _dtypes.storage_dtype(name)
            meta["dtype"] = name
        if obj.requires_grad:
            meta["requires_grad"] = True
        if type(obj) is sys.modules["torch"].nn.Parameter:
            meta["parameter"] = True
        shape = tuple(obj.shape)
        # a Fortran-ordered tensor (scikit-learn's transposed components_) is stored as
        # such and comes back so: matmul rounds differently on another layout, and a
        # numpy conversion must equal scikit-learn's own (move_estimator_to keeps strides)
        fortran = _fortran(obj)
        values = obj.permute(*reversed(range(obj.ndim))) if fortran else obj
        return Encoded(
            dtype=dtype,
            shape=shape,
            order="F" if fortran else "C",
            device=str(obj.device),
            meta=meta,
            chunks=lambda: host_chunks(values),
            nbytes=obj.numel() * dtype.itemsize,
        )

    # -- loading -----------------------------------------------------------------------

    def decode(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        torch = _torch()
        host = _dtypes.native(host)
        name = self._dtype_name(entry, host.dtype)
        with warnings.catch_warnings():
            # complex32 tensors warn that ComplexHalf is experimental on each allocation
            warnings.filterwarnings("ignore", "ComplexHalf support is experimental")
            tensor = _from_host(torch, host, name)
            target = self.target(entry, device)
            if torch.device(target).type != "cpu":
                tensor = tensor.to(target)
        return _finish(torch, tensor, entry)

    def maps(self, entry: ArrayEntry, device: str | None) -> bool:
        return bool(_torch().device(self.target(entry, device)).type == "cpu")

    def decode_streamed(self, entry: ArrayEntry, device: str | None, stream: Stream) -> Any | None:
        """A device tensor filled straight from the file through two staging buffers
        (pinned, with overlapped copies, for CUDA): no host copy of the whole array."""
        torch = _torch()
        target = torch.device(self.target(entry, device))
        stored = dtype_from_descr(entry["dtype"])
        nbytes = decoded_size(entry)
        if (
            target.type not in STREAMED
            or nbytes < STREAM_MIN_BYTES
            or not stored.isnative
            or entry["order"] not in ("C", "F")
        ):
            return None
        name = self._dtype_name(entry, stored)
        dtype = getattr(torch, name if name is not None else stored.name)
        with _on(torch, target):
            flat = torch.empty(nbytes, dtype=torch.uint8, device=target)
            step = min(STAGE_BYTES, nbytes)
            buffers = [_staging_buffer(torch, step, target) for _ in range(2)]
            copier = _copier(torch, target)

            def consume(start: int, slot: int, size: int) -> Any:
                return copier.copy(flat[start : start + size], buffers[slot][:size])

            stream([b.numpy().data for b in buffers], consume, copier.wait)
            shape = tuple(entry["shape"])
            if entry["order"] == "F":  # the bytes of the transpose: permute it back
                axes = tuple(reversed(range(len(shape))))
                tensor = flat.view(dtype).reshape(shape[::-1]).permute(*axes)
            else:
                tensor = flat.view(dtype).reshape(shape)
        return _finish(torch, tensor, entry)

    def _dtype_name(self, entry: ArrayEntry, stored: np.dtype[Any]) -> str | None:
        """torch's name for an extended dtype (None: numpy's name is torch's)."""
        where = entry.get("path", "a torch array")
        name = entry.get("meta", {}).get("dtype")
        if name is not None:
            _dtypes.check(name, stored, where)
            if name not in _EXTENDED:
                raise FormatError(f"{where}: torch has no dtype {name!r}")
        elif stored.name not in _NATIVE:
            raise FormatError(f"{where}: torch cannot hold {stored} arrays")
        return name  # type: ignore[no-any-return]

    def build(self, array: HostArray, device: str) -> Any:
        torch = _torch()
        if not array.flags.writeable:  # torch warns on read-only memory
            array = array.copy()
        tensor = _from_host(torch, array, None)
        return tensor if torch.device(device).type == "cpu" else tensor.to(device)

    # -- devices -----------------------------------------------------------------------

    def device_available(self, device: str) -> bool:
        torch = _torch()
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            return False
        if dev.type == "cpu":
            return True
        if dev.type not in _DEVICE_TYPES:
            return False
        try:
            module = torch.get_device_module(dev.type)
            if not module.is_available():
                return False
            count = module.device_count() if hasattr(module, "device_count") else 1
        except (RuntimeError, AttributeError, AssertionError):
            return False
        return (dev.index or 0) < count

    def normalize_device(self, device: str) -> str:
        """``"cpu"`` for any CPU; an index for the others (``"cuda"`` -> ``"cuda:0"``,
        the current device), as ``str(tensor.device)`` spells them."""
        torch = _torch()
        dev = torch.device(device)
        if dev.type == "cpu":
            return "cpu"
        if dev.index is not None:
            return str(dev)
        module = torch.get_device_module(dev.type)
        index = module.current_device() if hasattr(module, "current_device") else 0
        return f"{dev.type}:{index}"

    def device_object(self, device: str) -> Any:
        return _torch().device(device)

    def device_name(self, device: str) -> str | None:
        torch = sys.modules.get("torch")
        try:
            dev = torch.device(device)  # type: ignore[union-attr]
            if dev.type == "cpu":
                return None
            module = torch.get_device_module(dev.type)  # type: ignore[union-attr]
            return str(module.get_device_name(dev.index or 0))
        except Exception:
            return None


def _finish(torch: Any, tensor: Any, entry: ArrayEntry) -> Any:
    """Restore ``requires_grad`` and ``Parameter`` from the entry's meta."""
    meta = entry.get("meta", {})
    requires_grad = bool(meta.get("requires_grad", False))
    if requires_grad and not (tensor.is_floating_point() or tensor.is_complex()):
        where = entry.get("path", "a torch array")
        raise FormatError(f"{where}: a {tensor.dtype} tensor cannot require grad")
    if meta.get("parameter"):
        return torch.nn.Parameter(tensor, requires_grad=requires_grad)
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _fortran(tensor: Any) -> bool:
    """Is ``tensor`` laid out like Fortran order (strides growing with the axis, as in a
    transposed matrix or a slice of one) rather than C order? 2 or more dimensions."""
    if tensor.ndim < 2 or tensor.is_contiguous() or tensor.numel() <= 1:
        return False
    strides = [s for s, n in zip(tensor.stride(), tensor.shape) if n > 1]
    return strides == sorted(strides)


def _from_host(torch: Any, host: np.ndarray, name: str | None) -> Any:
    """A CPU tensor over ``host``'s memory (no copy), viewed as torch dtype ``name``."""
    dtype = getattr(torch, name if name is not None else host.dtype.name)
    if host.size == 0:  # from_numpy gives empty tensors zero strides, which break .view
        return torch.empty(host.shape, dtype=dtype)
    tensor = torch.from_numpy(host)
    return tensor if name is None else tensor.view(dtype)


def host_chunks(
    tensor: Any, chunk_bytes: int = STAGE_BYTES, stage: bool | None = None
) -> Iterator[memoryview]:
    """The bytes of ``tensor``'s values, in C order, ``chunk_bytes`` at a time.

    A CPU tensor that is already contiguous is read in place. A device tensor goes
    through two reused staging buffers: while the consumer writes one chunk, the copy of
    the next one into the other buffer is already running (on CUDA, where the copy is
    asynchronous), so the host holds two chunks, not the array (``stage`` forces either
    way, for tests).
    """
    torch = sys.modules["torch"]
    t = tensor.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.numel() == 0:  # (torch cannot view some empty tensors as bytes)
        return
    flat = t.contiguous().reshape(-1)  # one copy only for views
    if flat.numel() == 1:  # torch calls one element contiguous whatever its stride
        flat = flat.as_strided((1,), (1,))
    flat = flat.view(torch.uint8)
    total = flat.numel()
    if not (flat.device.type != "cpu" if stage is None else stage):
        view = flat.numpy().data
        for start in range(0, total, chunk_bytes):
            yield view[start : start + chunk_bytes]
        return
    if total < STREAM_MIN_BYTES and stage is None:  # small: one plain copy
        yield flat.cpu().numpy().data
        return
    yield from _staged(torch, flat, chunk_bytes)


def _staged(torch: Any, flat: Any, chunk_bytes: int) -> Iterator[memoryview]:
    total = flat.numel()
    step = min(total, chunk_bytes)
    starts = range(0, total, step)
    with _on(torch, flat.device):
        buffers = [_staging_buffer(torch, step, flat.device) for _ in range(2)]
        hosts = [b.numpy() for b in buffers]
        copier = _copier(torch, flat.device)

        def issue(index: int) -> Any:
            start = starts[index]
            n = min(step, total - start)
            return copier.copy(buffers[index % 2][:n], flat[start : start + n])

        pending = issue(0)
        try:
            for index, start in enumerate(starts):
                copier.wait(pending)
                pending = None
                if index + 1 < len(starts):
                    # the other buffer's chunk was consumed before this one was asked for
                    pending = issue(index + 1)
                yield hosts[index % 2][: min(step, total - start)].data
        finally:
            if pending is not None:  # the consumer stopped early: let the copy land
                copier.wait(pending)


class SyncCopier:
    """Blocking copies (the CPU, and devices without an asynchronous path here)."""

    def copy(self, dst: Any, src: Any) -> Any:
        dst.copy_(src)
        return None

    def wait(self, token: Any) -> None:
        pass


class CudaCopier:
    """Copies issued on the device's current stream without blocking the host; an event
    recorded after each one tells when its memory may be read or reused."""

    def __init__(self, torch: Any, device: Any) -> None:
        self._torch = torch
        self._stream = torch.cuda.current_stream(device)

    def copy(self, dst: Any, src: Any) -> Any:
        dst.copy_(src, non_blocking=True)
        event = self._torch.cuda.Event()
        event.record(self._stream)
        return event

    def wait(self, token: Any) -> None:
        if token is not None:
            token.synchronize()


def _copier(torch: Any, device: Any) -> Any:
    return CudaCopier(torch, device) if device.type == "cuda" else SyncCopier()


@contextmanager
def _on(torch: Any, device: Any) -> Iterator[None]:
    """Make ``device`` current for CUDA (streams and events belong to one device)."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            yield
    else:
        yield


def _staging_buffer(torch: Any, nbytes: int, device: Any) -> Any:
    if device.type == "cuda":
        try:
            return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        except RuntimeError:  # pinned memory exhausted or unsupported: pageable is fine
            pass
    return torch.empty(nbytes, dtype=torch.uint8)
