"""The interface every array handler implements.

Device strings are each library's own spelling, normalized by
:meth:`ArrayHandler.normalize_device`: ``"cpu"``, ``"cuda:0"``, ``"mps:0"`` (torch),
``"CPU_DEVICE"``, ``"device1"`` (array-api-strict), ``"cuda:1"`` (CuPy), ``"cpu:0"``,
``"gpu:0"`` (JAX), SYCL filter strings such as ``"level_zero:gpu:0"`` (dpnp).

Saving calls :meth:`~ArrayHandler.owns` (by type, never importing), then
:meth:`~ArrayHandler.stores` and :meth:`~ArrayHandler.encode` on each array; the bytes are
produced later, by ``Encoded.chunks``, one array at a time. Loading calls
:meth:`~ArrayHandler.available`, :meth:`~ArrayHandler.device_available`,
:meth:`~ArrayHandler.numpy_dtype` and :meth:`~ArrayHandler.accepts` while placing (before
anything is read), then one of :meth:`~ArrayHandler.decode_mapped` (``mmap=True``, when
:meth:`~ArrayHandler.maps`), :meth:`~ArrayHandler.decode_streamed` (straight to a device)
or :meth:`~ArrayHandler.decode` (from a host copy), or :meth:`~ArrayHandler.to_numpy` on
the source and :meth:`~ArrayHandler.from_numpy` on the target for a conversion.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._dtypes import STANDARD_CODES

if TYPE_CHECKING:
    import numpy as np

    #: A host array of stored bytes or values.
    HostArray = np.ndarray[Any, np.dtype[Any]]

#: One array's entry in the manifest (``dtype``, ``shape``, ``order``, ``namespace``,
#: ``device``, optional ``meta``, ``codec``, ``path``...), validated by the container
#: before any handler sees it (docs/format.md).
ArrayEntry = dict[str, Any]

#: Bytes handed to the writer at a time; also the size of a host staging buffer.
CHUNK_BYTES = 64 * 2**20
#: ``stream(buffers, consume, wait)``: fills each staging buffer in turn with the next
#: chunk of an array's stored bytes, calls ``consume(start, slot, size)`` and verifies
#: the checksum at the end (see :func:`devpersist._pipeline.read_staged`).
Stream = Callable[
    [Sequence[memoryview], Callable[[int, int, int], Any], Callable[[Any], None]], None
]


def imported(module: str, name: str) -> type | None:
    """The class ``module.name`` if ``module`` is imported, else None; never imports.

    The one detector behind every ``owns``/``device_types`` check (as array-api-compat's
    ``is_*_array`` helpers look in ``sys.modules``), but by type and exact, so that the
    result can be cached per type and subclasses stay foreign.
    """
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


@dataclass
class Encoded:
    """An array described for the manifest, with a lazy producer of its bytes.

    ``chunks`` is called once, when the writer reaches this array, so host copies of
    device arrays are made one array at a time. A chunk may be a view of a reused
    staging buffer: consume each one before asking for the next.
    """

    dtype: np.dtype[Any]  # of the stored bytes
    shape: tuple[int, ...]
    order: str  # "C" or "F": the order of the stored bytes
    device: str
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: Callable[[], Iterable[memoryview]] = lambda: ()
    nbytes: int = 0  # 0: derived from shape and dtype

    def __post_init__(self) -> None:
        if not self.nbytes:
            count = 1
            for n in self.shape:
                count *= int(n)
            self.nbytes = count * int(self.dtype.itemsize)


class ArrayHandler:
    """One array library. The registry line (:class:`~devpersist.arrays.Library`) sets
    ``namespace``, ``modules`` and ``install`` on the instance it creates."""

    #: Recorded in the manifest, e.g. ``"numpy"``, ``"torch"``.
    namespace: str = ""
    #: Top-level module names whose types this handler may own.
    modules: tuple[str, ...] = ()
    #: The distribution to install when the library is missing.
    install: str = ""
    #: The library's name in messages (default: the namespace).
    label: str = ""
    #: The element types :meth:`from_numpy` builds, as numpy kind-and-size codes.
    dtypes: frozenset[str] = STANDARD_CODES
    #: ``(module, class name)`` of the library's device object types (saved by name).
    device_classes: tuple[tuple[str, str], ...] = ()
    #: The library's array-namespace module, when it is not the namespace (JAX:
    #: ``"jax.numpy"``); saved by name where fitted state holds it.
    xp_module: str = ""
    #: Advice appended when a subclass of the library's array is refused.
    subclass_hint: str = ""

    def owns(self, tp: type) -> bool:
        """Is ``tp`` an array type of this library? Must not import anything."""
        raise NotImplementedError

    def stores(self, obj: Any) -> bool:
        """Can this instance go out of band (e.g. numpy object arrays cannot)?

        False lets pickle save it. Raises :class:`~devpersist.UnsupportedObjectError`
        (with the reason) for an instance that cannot be saved at all, such as a torch
        tensor on the ``meta`` device or in a sparse layout, so nothing is written.
        """
        return True

    def array_types(self) -> tuple[type, ...]:
        """The library's array base classes if it is imported, else ``()``; never imports.

        A subclass that :meth:`owns` refuses is an array devpersist cannot save
        faithfully (see :func:`devpersist.arrays.foreign_array`).
        """
        return ()

    def device_types(self) -> tuple[type, ...]:
        """The library's device object types that are imported (never imports)."""
        found = (imported(module, name) for module, name in self.device_classes)
        return tuple(tp for tp in found if tp is not None)

    def device_string(self, device: Any) -> str:
        """The device string recorded for one of :meth:`device_types`' objects."""
        return str(device)

    def encode(self, obj: Any) -> Encoded:
        raise NotImplementedError

    @staticmethod
    def target(entry: ArrayEntry, device: str | None) -> str:
        """The device to build on: ``device``, or the recorded one when None."""
        return entry["device"] if device is None else device

    def decode(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        """Build this library's array from ``host`` (a numpy array of the stored bytes)
        on ``device`` (None: the recorded one). By default: :meth:`require` then
        :meth:`from_numpy`."""
        self.require(host, entry)
        return self.from_numpy(host, self.target(entry, device))

    def maps(self, entry: ArrayEntry, device: str | None) -> bool:
        """With ``mmap=True``, can this array on ``device`` be built over the mapped file's
        bytes (host memory, no copy)? If so :meth:`decode_mapped` builds it."""
        return False

    def decode_mapped(self, host: HostArray, entry: ArrayEntry, device: str | None) -> Any:
        """Build the array over ``host``, a numpy view of the file mapped copy-on-write:
        writes to the result never reach the file."""
        return self.decode(host, entry, device)

    def decode_streamed(self, entry: ArrayEntry, device: str | None, stream: Stream) -> Any | None:
        """Build the array on ``device`` from the file through staging buffers, without a
        host copy of the whole array; None when this target is better served by
        :meth:`decode` of a host copy (the host itself, a small array)."""
        return None

    #: Does the library place arrays on devices? (numpy does not.)
    has_devices: bool = False
    #: The host device's name in this library, or None if it has none (CuPy).
    host_device: str | None = "cpu"

    def host(self) -> tuple[str, str]:
        """Where ``device="cpu"`` puts this library's arrays: ``(library, device)``.

        The library's own host device when it has one (torch ``cpu``, array-api-strict
        ``CPU_DEVICE``), else numpy (device-only libraries such as CuPy). May import the
        library (called while placing, once it is known to be installed).
        """
        if self.host_device is None:
            return "numpy", "cpu"
        return self.namespace, self.host_device

    def to_numpy(self, host: HostArray, entry: ArrayEntry) -> HostArray:
        """The stored bytes as a numpy array of the logical dtype (for conversion).

        Must not import the library: converting is how a file is loaded where the
        library is missing. Types numpy lacks widen exactly (bfloat16 -> float32).
        """
        from ._dtypes import check, to_numpy

        name = entry.get("meta", {}).get("dtype")
        if name is None:
            return host
        return to_numpy(host, check(name, host.dtype))

    def numpy_dtype(self, entry: ArrayEntry) -> np.dtype[Any]:
        """The dtype :meth:`to_numpy` returns for ``entry``, known before any byte is
        read; raises :class:`~devpersist.DeviceError` if the array has no numpy form."""
        from ._descr import dtype_from_descr
        from ._dtypes import check, numpy_dtype

        stored = dtype_from_descr(entry["dtype"])
        name = entry.get("meta", {}).get("dtype")
        if name is None:
            return stored
        return numpy_dtype(check(name, stored))

    def accepts(self, dtype: np.dtype[Any]) -> bool:
        """Can :meth:`from_numpy` build an array of numpy ``dtype``?"""
        return f"{dtype.kind}{dtype.itemsize}" in self.dtypes

    def require(self, host: HostArray, entry: ArrayEntry) -> None:
        """Raise a FormatError naming the array when this library cannot hold ``host``."""
        if not self.accepts(host.dtype):
            from .._exceptions import FormatError

            where = entry.get("path", "an array")
            raise FormatError(f"{where}: {self.label or self.namespace} has no {host.dtype} arrays")

    def from_numpy(self, array: Any, device: str) -> Any:
        """Convert a numpy array into this library's array on ``device``.

        Brings ``array`` to native byte order and refuses a dtype the library lacks
        (:class:`~devpersist.DeviceError`), then calls :meth:`build`.
        """
        import numpy as np

        from .._exceptions import DeviceError
        from ._dtypes import native

        array = native(np.asarray(array))
        if not self.accepts(array.dtype):
            label = self.label or self.namespace
            raise DeviceError(f"{label} has no dtype for numpy {array.dtype} arrays")
        return self.build(array, device)

    def build(self, array: HostArray, device: str) -> Any:
        """This library's array on ``device`` from ``array``, a native-order numpy array
        of a dtype :meth:`accepts`."""
        raise NotImplementedError

    def device_object(self, device: str) -> Any:
        """This library's device object for the string ``device``."""
        return device

    def normalize_device(self, device: str) -> str:
        """The canonical spelling of an available ``device`` (``"cuda"`` -> ``"cuda:0"``)."""
        return device

    def device_name(self, device: str) -> str | None:
        """A person's name for ``device`` (the GPU model), recorded when saving; None if
        unknown or the host. Only called with the library imported."""
        return None

    def available(self) -> bool:
        """Can arrays of this library be built in this process? (Finds, never imports.)"""
        import importlib.util

        name = self.modules[0]
        if sys.modules.get(name) is not None:
            return True
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install
            return False

    def device_available(self, device: str) -> bool:
        """Does ``device`` exist in this process (imports the library)?"""
        return True
