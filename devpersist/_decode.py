"""Reading arrays into place: the I/O half of loading arrays (the policy is ``_devices``).

The loader has checked the container and :meth:`devpersist._devices.Placement.check`
has decided every array's ``(library, device)``; :func:`decode_array` then builds array
``index`` there, choosing the cheapest route the handler offers:

1. ``mmap=True`` and the handler :meth:`~devpersist.arrays.ArrayHandler.maps` the
   target: a read-only view of the mapped file, no copy;
2. the handler streams to a device (:meth:`~devpersist.arrays.ArrayHandler.decode_streamed`):
   staging buffers, no host copy of the whole array;
3. otherwise one host array is filled (decompressing when a codec was used, widening
   ``precision=`` records) and decoded by the source library, or converted through
   numpy to the target library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ._codecs import decompress_stored, from_bfloat16_bits
from ._exceptions import ResourceLimitError
from .arrays import dtype_from_descr, empty_host, handler_for_namespace, host_bytes

if TYPE_CHECKING:
    from ._devices import Placement
    from ._format import StoredBlob
    from ._pipeline import Worker
    from .arrays import ArrayEntry
    from .arrays._base import HostArray


class ArraySource(Protocol):
    """What decoding needs of an open container (``_format.Container`` is one)."""

    @property
    def arrays(self) -> list[ArrayEntry]: ...

    def read_array_into(
        self, index: int, out: memoryview, worker: Worker | None = None
    ) -> None: ...

    def stream_array(
        self,
        index: int,
        buffers: Sequence[memoryview],
        consume: Callable[[int, int, int], Any],
        wait: Callable[[Any], None],
        worker: Worker | None = None,
    ) -> None: ...

    def stored_blob(self, index: int, worker: Worker | None = None) -> StoredBlob: ...

    def array_view(self, index: int, verify: bool = True) -> memoryview: ...

    def packed_array(self, index: int, dtype: np.dtype[Any]) -> HostArray: ...


def decode_array(
    placement: Placement, container: ArraySource, index: int, worker: Worker | None = None
) -> Any:
    """Array ``index`` of ``container``, built where ``placement`` planned it.

    Parameters
    ----------
    placement : Placement
        A placement whose :meth:`~devpersist._devices.Placement.check` has run.
    container : ArraySource
        The open, validated container (``_format.Container``).
    index : int
        The array's index in the manifest.
    worker : Worker, optional
        The read-ahead worker to share (``_pipeline``).

    Raises
    ------
    ResourceLimitError
        When the host runs out of memory for the array.
    """
    try:
        return _decode(placement, container, index, worker)
    except MemoryError as exc:
        raise ResourceLimitError(f"not enough memory to load array {index}") from exc


def _decode(placement: Placement, container: ArraySource, index: int, worker: Worker | None) -> Any:
    entry = container.arrays[index]
    library, device = placement.place(index)
    codec = entry.get("codec")
    meta = entry.get("meta", {})
    source = handler_for_namespace(entry["namespace"])
    if "packed" in entry and library == "numpy" == entry["namespace"] and not placement.mmap:
        dtype = dtype_from_descr(entry["dtype"])
        # the lean route (see Container.packed_array); numpy refuses a zero itemsize
        if "precision" not in meta and dtype.itemsize:
            return source.decode(container.packed_array(index, dtype), entry, device)
    if codec is None and "precision" not in meta and library == entry["namespace"]:
        if placement.mmap and source.maps(entry, device):
            view = container.array_view(index, verify=placement.verify)
            flat = np.frombuffer(view, dtype=dtype_from_descr(entry["dtype"]))
            host = flat.reshape(tuple(entry["shape"]), order=entry["order"])
            return source.decode_mapped(host, entry, device)

        def stream(
            buffers: Sequence[memoryview],
            consume: Callable[[int, int, int], Any],
            wait: Callable[[Any], None],
        ) -> None:
            container.stream_array(index, buffers, consume, wait, worker)

        built = source.decode_streamed(entry, device, stream)
        if built is not None:
            return built
    host = empty_host(entry)
    if codec is None:
        container.read_array_into(index, host_bytes(host), worker)
    else:
        decompress_stored(codec, container.stored_blob(index, worker), host_bytes(host))
    if "precision" in meta:
        host = widen(host, meta, placement.restore_precision)
    if library == entry["namespace"]:
        return source.decode(host, entry, device)
    return handler_for_namespace(library).from_numpy(source.to_numpy(host, entry), device)


def widen(host: HostArray, meta: dict[str, Any], restore: bool) -> HostArray:
    """Undo ``precision=``: bfloat16 bits become float32, then (``restore``) the saved
    dtype."""
    if meta["precision"] == "bfloat16":
        host = from_bfloat16_bits(host)
    if restore:
        host = host.astype(dtype_from_descr(meta["cast"]), order="K")
    return host
