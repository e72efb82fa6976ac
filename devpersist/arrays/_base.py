"""The interface every array handler implements."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: Bytes handed to the writer at a time; also the size of a host staging buffer.
CHUNK_BYTES = 64 * 2**20


@dataclass
class Encoded:
    """An array described for the manifest, with a lazy producer of its bytes.

    ``chunks`` is called once, when the writer reaches this array, so host copies of
    device arrays are made one array at a time.
    """

    dtype: Any  # numpy dtype of the stored bytes
    shape: tuple[int, ...]
    order: str  # "C" or "F": the order of the stored bytes
    device: str
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: Callable[[], Iterable[memoryview]] = lambda: ()
    nbytes: int = 0


class ArrayHandler:
    """One array library. Subclasses set ``namespace`` and ``modules``."""

    #: Recorded in the manifest, e.g. ``"numpy"``, ``"torch"``.
    namespace: str = ""
    #: Top-level module names whose types this handler may own.
    modules: tuple[str, ...] = ()
    #: The distribution to install when the library is missing.
    install: str = ""

    def owns(self, tp: type) -> bool:
        """Is ``tp`` an array type of this library? Must not import anything."""
        raise NotImplementedError

    def stores(self, obj: Any) -> bool:
        """Can this instance go out of band (e.g. numpy object arrays cannot)?"""
        return True

    def encode(self, obj: Any) -> Encoded:
        raise NotImplementedError

    def decode(self, host: Any, entry: dict[str, Any], device: str | None) -> Any:
        """Build this library's array from ``host`` (a numpy array of the stored bytes)
        on ``device`` (None: the recorded one)."""
        raise NotImplementedError

    #: Does the library place arrays on devices? (numpy does not.)
    has_devices: bool = False
    #: The host device's name in this library, or None if it has none (CuPy).
    host_device: str | None = "cpu"

    def to_numpy(self, host: Any, entry: dict[str, Any]) -> Any:
        """The stored bytes as a numpy array of the logical dtype (for conversion)."""
        return host

    def from_numpy(self, array: Any, device: str) -> Any:
        """Convert a numpy array into this library's array on ``device``."""
        raise NotImplementedError

    def device_object(self, device: str) -> Any:
        """This library's device object for the string ``device``."""
        return device

    def normalize_device(self, device: str) -> str:
        return device

    def available(self) -> bool:
        """Can arrays of this library be built in this process?"""
        import importlib.util

        return importlib.util.find_spec(self.modules[0]) is not None

    def device_available(self, device: str) -> bool:
        """Does ``device`` exist in this process (imports the library)?"""
        return True
