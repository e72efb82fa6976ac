"""dump / dumps: the save orchestration.

Place in the data flow: the top of the save path. Pickle the graph with arrays out of
band (:mod:`devpersist._graph`; nothing is written if that fails), describe each array
(its handler in ``arrays/`` encodes it lazily), record the environment and the
configuration, then stream header, graph, pack, array bytes, manifest and trailer to
the target (:mod:`devpersist._writer`). A path target is written to a temporary file in
the same folder and renamed into place only once complete and fsynced
(:mod:`devpersist._atomic`).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Union

from . import _codecs, _config, _format, _remote
from ._atomic import atomic_target
from ._environment import cpu_name, environment
from ._exceptions import UntrustedTypeWarning
from ._graph import audit, dump_graph
from ._options import DumpOptions
from ._progress import Progress
from ._protocol import PACK_MAX_BYTES
from ._safety import audit_refusals
from ._walk import array_paths
from ._writer import BlobSource, Compression
from .arrays import dtype_to_descr

if TYPE_CHECKING:
    from ._pickler import ArrayRef
    from ._replay import Record

PathLike = Union[str, "os.PathLike[str]"]
FileLike = Union[PathLike, IO[bytes]]  # noqa: UP007


@dataclass
class Prepared:
    """A save, ready to be written: the graph, the arrays (bytes produced when
    written), the manifest's other sections, and how v2 compresses graph and pack."""

    graph: bytes
    blobs: list[BlobSource]
    metadata: dict[str, Any]
    compression: Compression | None


def require_binary(file: Any, mode: str) -> None:
    """A text-mode file object would fail deep inside the reader or writer."""
    if isinstance(file, io.TextIOBase):
        name = getattr(file, "name", None)
        where = f" ({name!r})" if isinstance(name, str) else ""
        raise TypeError(
            f"the file object{where} is open in text mode; devpersist files are binary: "
            f"open it with mode {mode!r}"
        )


def _describe(obj: Any) -> dict[str, Any]:
    tp = type(obj)
    return {"type": f"{tp.__module__}.{tp.__qualname__}"}


def prepare(obj: Any, options: DumpOptions, progress: Progress | None = None) -> Prepared:
    """Pickle ``obj`` and describe each array, before anything is written: a save that
    cannot succeed raises here, and the target is never touched."""
    codec, precision, clamp_precision = options.codec, options.precision, options.clamp_precision
    graph, refs = dump_graph(obj)
    labels = array_paths(obj, [r.obj for r in refs], [r.owner for r in refs]) if refs else []
    blobs = [
        _blob(ref, label, codec, precision, progress, clamp_precision)
        for ref, label in zip(refs, labels)
    ]
    audited = audit(graph, len(refs), limits=False)  # our own stream: names and uses
    names = audited.names
    _warn_untrusted(audited)
    uses_sklearnex = any(
        m.partition(".")[0] in ("sklearnex", "onedal", "daal4py") for m, _ in names
    )
    env = environment()
    devices = {b.meta["device"]: b.meta["namespace"] for b in blobs}
    if devices:
        env = {**env, "devices": {d: _device_name(ns, d) for d, ns in sorted(devices.items())}}
    metadata: dict[str, Any] = {
        "globals": sorted([list(n) for n in names]),
        "object": _describe(obj),
        "environment": env,
    }
    required = _config.requirements(obj, [b.meta for b in blobs])
    config = _config.capture(uses_sklearnex, required)
    if config is not None:
        metadata["config"] = config
    if options.metadata is not None:
        metadata["metadata"] = options.metadata
    compression = None
    if codec is not None:
        name, level = codec
        compression = Compression(name, lambda chunks: _codecs.compress_chunks(chunks, name, level))
    return Prepared(graph, blobs, metadata, compression)


def _warn_untrusted(audited: Record) -> None:
    """Say at save time, not at load, that a default load will refuse this file."""
    bad = audit_refusals(audited)  # everything named is imported already: cheap
    if bad:
        lines = "".join(f"\n  - {name}: {why}" for name, why in bad.items())
        warnings.warn(
            UntrustedTypeWarning(
                "the saved object refers to names a default devpersist.load refuses:"
                f"{lines}\nLoading the file will need trusted=[...] for those a reader "
                "has checked (names on the never list cannot be trusted).",
                untrusted=bad,
            ),
            stacklevel=4,
        )


def _device_name(namespace: str, device: str) -> str:
    from .arrays import handler_for_namespace

    name = getattr(handler_for_namespace(namespace), "device_name", lambda d: None)(device)
    if name:
        return str(name)
    return cpu_name() if device in ("cpu", "CPU_DEVICE") else device


def _blob(
    ref: ArrayRef,
    label: str | None,
    codec: tuple[str, int] | None,
    precision: str | None,
    progress: Progress | None,
    clamp_precision: bool = False,
) -> BlobSource:
    """Describe one array for the manifest; its bytes are produced when written."""
    import numpy as np

    enc = ref.handler.encode(ref.obj)
    dtype, nbytes, produce = np.dtype(enc.dtype), enc.nbytes, enc.chunks
    meta: dict[str, Any] = {
        "dtype": dtype_to_descr(dtype),
        "shape": list(enc.shape),
        "order": enc.order,
        "namespace": ref.handler.namespace,
        "device": enc.device,
    }
    extra: dict[str, Any] | None = None
    if precision is not None and _codecs.precision_applies(dtype, precision):
        if not clamp_precision:  # a second pass over the data, before anything is written
            where = label or f"an array of shape {enc.shape}"
            _codecs.check_precision(produce(), dtype, precision, where)
        source_dtype, original = dtype, produce
        dtype = _codecs.stored_dtype(precision)
        nbytes = nbytes // source_dtype.itemsize * dtype.itemsize
        meta["dtype"] = dtype_to_descr(dtype)
        extra = {"cast": dtype_to_descr(source_dtype), "precision": precision}

        def produce() -> Iterable[memoryview]:
            return _codecs.reduce_precision(original(), source_dtype, precision, clamp_precision)

    if enc.meta or extra:
        meta["meta"] = {**enc.meta, **extra} if extra else enc.meta
    if label is not None:
        meta["path"] = label
    if progress is not None:
        progress.total += enc.nbytes
    chunks = _Chunks(produce, progress)
    if codec is not None and nbytes > max(_codecs.MIN_COMPRESS_BYTES - 1, PACK_MAX_BYTES):
        meta["codec"] = codec[0]
        return BlobSource(meta, -1, _codecs.compress_chunks(chunks, *codec))
    return BlobSource(meta, nbytes, chunks)


class _Chunks:
    """An array's chunks, produced only once the writer asks for them (a device array
    is copied to the host then, one at a time), counted by the progress bar if shown."""

    __slots__ = ("produce", "progress")

    def __init__(
        self, produce: Callable[[], Iterable[memoryview]], progress: Progress | None
    ) -> None:
        self.produce = produce
        self.progress = progress

    def __iter__(self) -> Iterator[memoryview]:
        chunks = self.produce()
        if self.progress is not None and self.progress.enabled:  # decided once, total known
            return self.progress.counted(chunks)
        return iter(chunks)


def write(f: IO[bytes], prepared: Prepared) -> int:
    """Stream a prepared save to ``f``; the number of bytes written."""
    # through the module, so that tests can replace the writer (a failing disk)
    return _format.write_container(
        f, prepared.graph, prepared.blobs, prepared.metadata, compression=prepared.compression
    )


def dumps(
    obj: Any,
    *,
    compress: Any = None,
    precision: str | None = None,
    progress: bool | None = False,
    clamp_precision: bool = False,
    metadata: dict[str, Any] | None = None,
) -> bytes:
    """Serialize ``obj`` to bytes in the devpersist format.

    Parameters
    ----------
    obj : object
        A fitted estimator or any object graph made of allowlisted types and arrays.
    compress : None, bool, int, str or (str, int), optional
        Compress the object graph (everything but array bytes, e.g. a vocabulary), the
        pack of small arrays (64 KiB or less, compressed together) and each larger
        array, with joblib's conventions: an int 0-9 is a
        zlib level (0: off); True is zstd (zlib, with a warning, when zstandard is
        missing); a codec name ``"zstd"`` (uses every core), ``"lz4"``, ``"zlib"``,
        ``"lzma"`` (joblib's ``"gzip"`` and ``"xz"`` name the same algorithms), with an
        optional level as ``"zstd:19"`` or ``("zstd", 19)``.
    precision : {None, "float16", "bfloat16"}, optional
        Store floating arrays at half precision; :func:`load` casts them back. An array
        with values the storage type cannot hold raises :class:`PrecisionLossError`
        (naming its attribute path) before anything is written: finite values beyond its
        range (65504 for float16), or non-zero values that would become 0 although they
        exceed the type's epsilon times the array's largest magnitude.
    progress : bool or None
        Show a progress bar on stderr; None: only in a terminal and for 64 MiB or more.
    clamp_precision : bool
        With ``precision``: store out-of-range values as the storage type's largest
        finite value (and vanishing ones as 0) instead of raising.
    metadata : dict, optional
        Your own JSON metadata (owner, metrics, a training data hash...), at most 64 KiB
        as JSON: string keys, lists, strings, finite numbers, booleans and None only.
        Checked before anything is written; :func:`info` returns it as ``"metadata"``.

    Returns
    -------
    bytes

    Raises
    ------
    UnsupportedObjectError
        Some object in the graph cannot be saved; the message names its path.
    """
    options = DumpOptions(
        compress=compress,
        precision=precision,
        progress=progress,
        clamp_precision=clamp_precision,
        metadata=metadata,
    )
    bar = Progress(0, "saving", progress)
    prepared = prepare(obj, options, bar)
    buf = io.BytesIO()
    write(buf, prepared)
    bar.close()
    return buf.getvalue()


def dump(
    obj: Any,
    file: FileLike,
    *,
    compress: Any = None,
    precision: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    clamp_precision: bool = False,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save ``obj`` to ``file``: a path, an fsspec URL (``s3://...``) or a binary file
    object. Options as for :func:`dumps`; ``storage_options`` go to fsspec.

    A path is written atomically: the data goes to a temporary file in the same folder,
    is fsynced and renamed over the target, so the target is either the old file or the
    complete new one, never a partial one. Nothing is created if ``obj`` cannot be saved.
    The temporary file is ``.{name}.XXXXXXXX.tmp``; a save first removes the ones that
    saves to the same path left when they were killed (never one a running save holds,
    never any other file).
    """
    # raises before anything touches the target
    options = DumpOptions(
        compress=compress,
        precision=precision,
        progress=progress,
        clamp_precision=clamp_precision,
        metadata=metadata,
    )
    bar = Progress(0, "saving", progress)
    prepared = prepare(obj, options, bar)
    if _remote.is_url(file):
        with _remote.writer(file, storage_options) as f:  # type: ignore[arg-type]
            write(f, prepared)
    elif isinstance(file, (str, os.PathLike)):
        with atomic_target(os.fspath(file)) as f:
            write(f, prepared)
    elif hasattr(file, "write"):
        require_binary(file, "wb")
        write(file, prepared)
    else:
        raise TypeError(f"file must be a path or a binary file object, not {type(file).__name__}")
    bar.close()
