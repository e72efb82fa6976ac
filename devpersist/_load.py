"""load / loads: the load orchestration.

Place in the data flow: the top of the load path, in skops' order: **parse** (open and
validate the container, :mod:`devpersist._format`; the environment and configuration
sections by their owners), **audit** (every name the graph reaches, nothing imported,
:mod:`devpersist._graph` and :mod:`devpersist._safety`), **resolve** (import only the
approved names), **place** (libraries and devices decided for every array before any is
read, :mod:`devpersist._devices`), **read** (each array's bytes verified), **construct**
(unpickle with the audited names and the placed arrays).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from . import _codecs, _config, _remote
from ._devices import Placement
from ._environment import VersionMismatchWarning, mismatch_table, mismatches, validate_environment
from ._exceptions import IntegrityError, UntrustedTypeError, VersionMismatchError
from ._format import Container
from ._graph import audit, load_graph
from ._options import LoadOptions
from ._progress import CountingSource, Progress
from ._safety import audit_refusals, check_uses, normalize_trusted, prescreen, refused, resolve
from ._save import FileLike, require_binary
from ._sources import BufferSource, FileSource, Source, read_stream

if TYPE_CHECKING:
    from ._replay import Record


@contextmanager
def open_source(
    file: Any, mmap: bool = False, storage_options: dict[str, Any] | None = None, whole: bool = True
) -> Iterator[Source]:
    """The container's bytes behind ``file``: bytes, a URL (fsspec; ``whole=False``
    reads ranges), a path (memory-mapped with ``mmap``), a seekable file object (from
    its position) or a non-seekable stream (one container, read up to its trailer)."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        yield BufferSource(file)
    elif _remote.is_url(file):
        with _remote.reader(file, storage_options, whole) as (content, size):
            if isinstance(content, bytes):
                yield BufferSource(content)
            else:
                yield FileSource(content, 0, size)
    elif isinstance(file, (str, os.PathLike)):
        with open(os.fspath(file), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if mmap and size:
                import mmap as _mmap

                # copy-on-write, so that torch tensors (which cannot be read-only) may be
                # written without reaching the file; numpy arrays are marked read-only.
                # The mapping outlives the file: arrays keep it alive through their base.
                yield BufferSource(_mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_COPY))
            else:
                yield FileSource(f, 0, size)
    elif hasattr(file, "read"):
        require_binary(file, "rb")
        seekable = getattr(file, "seekable", lambda: False)()
        if seekable:
            start = file.tell()
            end = file.seek(0, io.SEEK_END)
            yield FileSource(file, start, end - start)
            file.seek(end)
        else:
            yield BufferSource(read_stream(file))
    else:
        raise TypeError(
            f"file must be a path, a binary file object or bytes, not {type(file).__name__}"
        )


def open_container(source: Source) -> Container:
    """Open and validate a container, then the sections their owners validate."""
    container = Container.open(source)
    manifest = container.manifest
    if "environment" in manifest:
        validate_environment(manifest["environment"])
    if "config" in manifest:
        _config.validate(manifest["config"])
    return container


def audit_container(container: Container, trusted: frozenset[str]) -> tuple[bytes, Record]:
    """Parse and audit: the checked graph and what it does, nothing imported yet."""
    container.check_padding()
    graph = container.graph()
    result = audit(graph, len(container.arrays))
    declared = {tuple(n) for n in container.manifest["globals"]}
    if result.names != declared:
        raise IntegrityError("the manifest's list of globals does not match the object graph")
    try:
        prescreen(result.names, trusted)
    except UntrustedTypeError:  # say everything a load refuses, as get_untrusted_types does
        raise refused(audit_refusals(result, trusted)) from None
    if result.called_results:
        raise refused(audit_refusals(result, trusted), what="uses")
    return graph, result


def _check_versions(manifest: dict[str, Any], strict: bool) -> bool:
    rows = mismatches(manifest.get("environment", {}))
    if not rows:
        return False
    message = (
        "the file was saved with library versions outside devpersist's compatibility "
        "policy (docs/config.md); the model may fail or predict differently:\n"
        + mismatch_table(rows)
    )
    if strict:
        raise VersionMismatchError(message)
    warnings.warn(message, VersionMismatchWarning, stacklevel=4)
    return True


def load_container(container: Container, options: LoadOptions) -> Any:
    """Audit, place, read and build the object of an opened container."""
    manifest = container.manifest
    placement = options.placement()
    if options.mmap:
        pack = manifest.get("pack")
        _codecs.warn_decoded(container.arrays, pack is not None and "codec" in pack)
    config = manifest.get("config")  # validated with the manifest, like the environment
    mismatch = _check_versions(manifest, options.strict)
    trusted = normalize_trusted(options.trusted)
    graph, result = audit_container(container, trusted)  # imports nothing
    with _config.environment_for(config if options.restore_config else None, placement.namespace):
        approved = resolve(result.names, trusted)  # imports scikit-learn (and so scipy)
        check_uses(result.called, result.modified, approved, trusted)
    placement.check(container.arrays)  # libraries and devices, before anything is built
    _config.check_placement(config, container.arrays, placement.planned)
    # Only scikit-learn (or a library built on it) reads the configuration, and resolving
    # the file's names imported it if any object needs it: when it is still absent,
    # nothing here is configured, and planning would import it for nothing.
    restore = options.restore_config and "sklearn" in sys.modules
    planned = _config.plan(config, placement) if restore else None
    if planned and not _config.needs_restoring(planned):
        planned = None  # scikit-learn's defaults: nothing to apply, nothing to wrap
    quiet = warnings.catch_warnings() if mismatch else contextlib.nullcontext()
    with _config.applied(_config.for_building(planned)), quiet:
        if mismatch:  # already reported, in one table: silence scikit-learn's own
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator")
        arrays = _decode_all(container, placement, options.progress)
        obj = load_graph(graph, approved, arrays, placement)
        if (placement.namespace or placement.device) is not None and _config.defines_hook(approved):
            obj = _config.honour_hook(obj)  # scikit-learn's conversion protocol
    placement.report()
    if planned and _config.is_estimator(obj):
        return _config.ConfiguredEstimator(obj, planned)
    return obj


def _decode_all(container: Container, placement: Placement, progress: bool | None) -> list[Any]:
    count = len(container.arrays)
    with container.worker() as worker:
        if progress is False or (progress is None and not sys.stderr.isatty()):
            return [placement.decode(container, i, worker) for i in range(count)]
        # what will be read from the file: arrays mmap maps are not (see _progress)
        mapped = placement.mmap and not placement.verify
        read = [
            e["length"]
            for e in container.arrays
            if not (mapped and "codec" not in e and "precision" not in e.get("meta", {}))
        ]
        bar = Progress(sum(read), "loading", progress)
        source = container.source
        counting = CountingSource(source, bar, count_views=not mapped)
        container.source = counting  # type: ignore[assignment]
        try:
            arrays = [placement.decode(container, i, worker) for i in range(count)]
        finally:
            container.source = source
        bar.close()
        return arrays


def load(
    file: FileLike,
    *,
    trusted: Iterable[Any] | None = None,
    device: Any = None,
    namespace: str | None = None,
    fallback: Literal["host", "raise"] = "host",
    restore_config: bool = True,
    restore_precision: bool = True,
    strict: bool = False,
    mmap: bool = False,
    verify: bool | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Any:
    """Load an object saved by :func:`dump`, safely.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A binary file object is read from its current position. A non-seekable stream
        (a pipe, a socket) is read up to the end of one container and no further, so
        that containers written back to back load one after the other.
    trusted : iterable of str, type or function, optional
        Names outside the default allowlist that you trust (``"module.Qualname"``).
    device : None, str, dict or callable, optional
        Where arrays go. None: their original device when it exists, else the host
        (with one warning). A string: that device. A dict maps saved devices to new ones
        (``{"cuda:0": "cuda:1"}``). A callable gets ``(saved_device, namespace)`` and
        returns a device string.
    namespace : str, optional
        Convert every array to this library (``"numpy"`` makes a plain numpy model).
    fallback : {"host", "raise"}
        What to do when an array's device does not exist here.
    restore_config : bool
        Run the loaded estimator's methods under the recorded scikit-learn/sklearnex
        configuration (adjusted to where the arrays went). See docs/config.md.
    restore_precision : bool
        Cast arrays saved with ``precision=`` back to their original dtype.
    strict : bool
        Raise :class:`VersionMismatchError` instead of warning when the file's library
        versions break the compatibility policy.
    mmap : bool
        For a path: host arrays (uncompressed, full precision) are built over the
        memory-mapped file, and nothing is read until the data is touched. numpy arrays
        are read-only views; torch CPU tensors are copy-on-write (writes stay in memory,
        never reaching the file). Compressed or reduced-precision arrays, and sources
        that are not local paths, are read instead, with a ``NotMappedWarning``.
    verify : bool, optional
        Verify array checksums. Default: True, except for memory-mapped arrays, which
        would have to be read in full (use ``devpersist.verify`` for those files).
    storage_options : dict, optional
        Passed to fsspec when ``file`` is a URL (``s3://``, ``gs://``, ``memory://``...).
    progress : bool or None
        Show a progress bar on stderr; None: only in a terminal and for 64 MiB or more.

    Raises
    ------
    FormatError, IntegrityError
        The file is not a valid, intact devpersist file.
    UntrustedTypeError
        The file names types outside the allowlist; nothing was constructed.
    """
    mmap = mmap and _codecs.warn_unmapped(file, _remote.is_url(file))  # else read, warned
    options = LoadOptions(
        trusted=trusted,
        device=device,
        namespace=namespace,
        fallback=fallback,
        restore_config=restore_config,
        restore_precision=restore_precision,
        strict=strict,
        mmap=mmap,
        verify=verify,
        progress=progress,
    )
    with open_source(file, mmap=mmap, storage_options=storage_options) as source:
        return load_container(open_container(source), options)


def loads(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Iterable[Any] | None = None,
    device: Any = None,
    namespace: str | None = None,
    fallback: Literal["host", "raise"] = "host",
    restore_config: bool = True,
    restore_precision: bool = True,
    strict: bool = False,
    progress: bool | None = False,
) -> Any:
    """Load an object from bytes made by :func:`dumps`; see :func:`load`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() takes bytes, not {type(data).__name__}")
    options = LoadOptions(  # no mmap or verify: bytes are in memory and always verified
        trusted=trusted,
        device=device,
        namespace=namespace,
        fallback=fallback,
        restore_config=restore_config,
        restore_precision=restore_precision,
        strict=strict,
        progress=progress,
    )
    return load_container(open_container(BufferSource(data)), options)
