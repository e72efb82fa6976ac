"""Where loaded arrays go: the placement rules (docs/devices.md).

For each saved array (library ``ns``, device ``d``):

1. the library: ``namespace=`` if given (conversion), else ``ns``;
2. the device asked for: ``device=None`` -> ``d``; a string -> that string; a dict ->
   ``mapping.get(d, d)``; a callable -> ``f(d, ns)``. Host-only libraries (numpy) ignore
   it. After a conversion the array goes to the target library's host device unless the
   user named a device;
   The name ``"cpu"`` means *the host* for every library: each handler's
   :meth:`~devpersist.arrays._base.ArrayHandler.host` (torch ``cpu``, array-api-strict
   ``CPU_DEVICE``, dpnp a host SYCL device if any; CuPy and other device-only libraries
   become numpy, with one warning);
3. if the device does not exist here: a device the user named is an error; the original
   device falls back to the library's host device (or to numpy for device-only
   libraries such as CuPy) with one warning listing what moved, unless
   ``fallback="raise"``.

Every decision is made in :meth:`Placement.check`, before any array is read or any
object is built; devices and namespace modules inside the graph follow the same rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ._decode import decode_array
from ._exceptions import DeviceError, MissingLibraryError
from .arrays import ArrayEntry, dtype_from_descr, handler_for_namespace, registered_namespaces

#: The device name that means "the host" for every library (see ``ArrayHandler.host``).
HOST = "cpu"
#: What ``device=`` accepts: None (where saved), one device, a mapping of saved devices,
#: or ``f(saved_device, namespace)``.
DeviceSpec = None | str | dict[str, str] | Callable[[str, str], str]
#: An array's place: ``(library, device)``.
Place = tuple[str, str]


class DeviceFallbackWarning(UserWarning):
    """Arrays were loaded on the host because their saved device does not exist here."""


class Placement:
    """Where each array of one load goes, decided before anything is read.

    Parameters are those of :func:`devpersist.load`: ``device``, ``namespace``,
    ``fallback`` (``"host"`` or ``"raise"``), ``restore_precision``, ``mmap`` and
    ``verify`` (the last three are used while decoding, by :mod:`devpersist._decode`).
    """

    def __init__(
        self,
        device: DeviceSpec = None,
        namespace: str | None = None,
        fallback: Literal["host", "raise"] = "host",
        restore_precision: bool = True,
        mmap: bool = False,
        verify: bool = True,
    ) -> None:
        if fallback not in ("host", "raise"):
            raise ValueError(f"fallback must be 'host' or 'raise', not {fallback!r}")
        if namespace is not None and namespace not in registered_namespaces():
            raise ValueError(
                f"namespace must be one of {registered_namespaces()}, not {namespace!r}"
            )
        if not (device is None or isinstance(device, (str, dict)) or callable(device)):
            raise TypeError("device must be None, a string, a dict or a callable")
        self.device = device
        self.namespace = namespace
        self.fallback = fallback
        self.restore_precision = restore_precision
        self.mmap = mmap
        self.verify = verify
        self._decisions: dict[tuple[str, str], Place] = {}
        self._plan: list[Place] = []
        self.moves: list[tuple[str, str, str]] = []
        self.to_numpy: list[tuple[str, str, str]] = []  # device="cpu" for CuPy and the like

    # -- decisions -----------------------------------------------------------------

    def _requested(self, namespace: str, saved: str) -> tuple[str | None, bool]:
        """The device asked for (None: the library's default) and whether the user
        named it explicitly."""
        device = self.device
        if device is None:
            return saved, False
        if isinstance(device, str):
            return device, True
        if isinstance(device, dict):
            if saved in device:
                return str(device[saved]), True
            return saved, False
        return str(device(saved, namespace)), True

    def decide(self, namespace: str, saved: str) -> tuple[str, str]:
        """``(library, device)`` for an array or device object saved as ``(namespace, saved)``."""
        key = (namespace, saved)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = self._decide(namespace, saved)
        return decision

    def _decide(self, namespace: str, saved: str) -> tuple[str, str]:
        library = self.namespace or namespace
        handler = handler_for_namespace(library)
        if not handler.available():
            raise MissingLibraryError(
                f"the file holds {namespace} arrays and {handler.install!r} is not "
                f"installed: install it, or load with namespace='numpy' to get numpy arrays"
            )
        requested, explicit = self._requested(namespace, saved)
        host = handler.host_device or "cpu"
        if not handler.has_devices:
            return library, host
        if library != namespace and not explicit:
            return library, host
        if explicit and requested == HOST:
            return handler.host()
        if requested is not None and handler.device_available(requested):
            return library, handler.normalize_device(requested)
        if explicit:
            raise DeviceError(f"device {requested!r} does not exist for {library} in this process")
        if self.fallback == "raise":
            raise DeviceError(
                f"the file's {namespace} arrays were saved on {saved!r}, which does not "
                "exist here; pass device= to choose one, or fallback='host'"
            )
        if handler.host_device is None:  # device-only library (CuPy): becomes numpy
            return "numpy", "cpu"
        return library, handler.host_device

    def check(self, entries: list[ArrayEntry]) -> None:
        """Decide every array's place before anything is read or built."""
        self._plan = [self.decide(e["namespace"], e["device"]) for e in entries]
        for index, (entry, (library, device)) in enumerate(zip(entries, self._plan)):
            if library != entry["namespace"]:
                self._check_conversion(entry, library, index)
                if self.namespace is None and self.device is not None:
                    # device="cpu" asked for the host; a fallback is reported as a move
                    where = entry.get("path", f"array {index}")
                    self.to_numpy.append((where, entry["namespace"], library))
            if self.device is None and self.namespace is None and device != entry["device"]:
                self.moves.append((entry.get("path", f"array {index}"), entry["device"], device))

    def place(self, index: int) -> Place:
        """``(library, device)`` planned for array ``index`` by :meth:`check`."""
        return self._plan[index]

    @property
    def planned(self) -> list[Place]:
        """``(library, device)`` of each array, once :meth:`check` has run."""
        return list(self._plan)

    def _check_conversion(self, entry: ArrayEntry, library: str, index: int) -> None:
        """Can ``library`` hold this array's values? Asked before anything is read."""
        meta = entry.get("meta", {})
        if "precision" in meta:  # what _decode.widen hands over
            half = np.dtype("<f4") if meta["precision"] == "bfloat16" else np.dtype("<f2")
            dtype = dtype_from_descr(meta["cast"]) if self.restore_precision else half
        else:
            dtype = handler_for_namespace(entry["namespace"]).numpy_dtype(entry)
        if not handler_for_namespace(library).accepts(dtype):
            raise DeviceError(
                f"{entry.get('path', f'array {index}')}: {library} has no dtype for "
                f"{dtype} arrays; load with namespace='numpy', or without namespace="
            )

    # -- building --------------------------------------------------------------------

    #: Read array ``index`` of a container into its planned place:
    #: ``placement.decode(container, index, worker=None)`` is
    #: :func:`devpersist._decode.decode_array` (bound directly: one call per array).
    decode = decode_array

    def device_object(self, namespace: str, saved: str) -> Any:
        library, device = self.decide(namespace, saved)
        if self.device is None and self.namespace is None and device != saved:
            move = (f"a {namespace} device object", saved, device)
            if move not in self.moves:  # reported in the same single warning as arrays
                self.moves.append(move)
        return handler_for_namespace(library).device_object(device)

    def target_library(self, namespace: str) -> str:
        """The library arrays (and namespace modules) of ``namespace`` become."""
        if self.namespace is not None:
            return self.namespace
        for (saved_ns, _), (library, _) in self._decisions.items():
            if saved_ns == namespace:
                return library
        return namespace

    def report(self) -> None:
        if self.to_numpy:
            libraries = sorted({src for _, src, _ in self.to_numpy})
            paths = ", ".join(path for path, _, _ in self.to_numpy[:10])
            more = f" and {len(self.to_numpy) - 10} more" if len(self.to_numpy) > 10 else ""
            warnings.warn(
                f"{', '.join(libraries)} has no host device here, so device='cpu' loaded "
                f"{len(self.to_numpy)} array(s) as numpy arrays ({paths}{more})",
                DeviceFallbackWarning,
                stacklevel=4,
            )
        if not self.moves:
            return
        lines = [f"  {path}: {src} -> {dst}" for path, src, dst in self.moves[:20]]
        if len(self.moves) > 20:
            lines.append(f"  ... and {len(self.moves) - 20} more")
        warnings.warn(
            f"{len(self.moves)} array(s) were saved on devices that do not exist here and "
            "were loaded on the host:\n"
            + "\n".join(lines)
            + "\nPass device=... to choose, or fallback='raise' to make this an error.",
            DeviceFallbackWarning,
            stacklevel=4,
        )
