"""dump / dumps / load / loads / info / get_untrusted_types: the orchestration.

Saving: pickle the graph with arrays out of band (nothing is written if that fails),
describe each array, then stream header, graph, array bytes, manifest and trailer to the
target. A path target is written to a temporary file in the same folder and renamed into
place only once complete and fsynced.

Loading: validate the container, verify the graph's checksum, audit every name it
refers to, check that the arrays' libraries and devices are available, read and verify
each array, and only then construct the object.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Union

from . import _codecs, _config, _format, _remote
from ._atomic import atomic_target
from ._devices import Placement
from ._environment import (
    VersionMismatchWarning,
    cpu_name,
    environment,
    mismatch_table,
    mismatches,
)
from ._exceptions import (
    IntegrityError,
    UntrustedTypeError,
    UntrustedTypeWarning,
    VersionMismatchError,
)
from ._format import BlobSource, Container
from ._graph import audit, dump_graph, load_graph
from ._metadata import check_metadata
from ._progress import CountingSource, Progress
from ._safety import audit_refusals, check_uses, normalize_trusted, prescreen, refused, resolve
from ._walk import array_paths

PathLike = Union[str, "os.PathLike[str]"]
FileLike = Union[PathLike, IO[bytes]]  # noqa: UP007


# --------------------------------------------------------------------------- saving


def _describe(obj: Any) -> dict[str, Any]:
    tp = type(obj)
    return {"type": f"{tp.__module__}.{tp.__qualname__}"}


def _prepare(
    obj: Any,
    *,
    compress: Any = None,
    precision: str | None = None,
    progress: Progress | None = None,
    clamp_precision: bool = False,
    user_metadata: dict[str, Any] | None = None,
) -> tuple[bytes, list[BlobSource], dict[str, Any]]:
    if user_metadata is not None:
        user_metadata = check_metadata(user_metadata)
    codec = _codecs.parse_compress(compress)
    if precision is not None and precision not in _codecs.PRECISIONS:
        raise ValueError(
            f"precision must be one of {_codecs.PRECISIONS} or None, not {precision!r}"
        )
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
    if user_metadata is not None:
        metadata["metadata"] = user_metadata
    return graph, blobs, metadata


def _warn_untrusted(audited: Any) -> None:
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
    ref: Any,
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
    extra: dict[str, Any] = {}
    if _codecs.precision_applies(dtype, precision):
        assert precision is not None
        if not clamp_precision:  # a second pass over the data, before anything is written
            where = label or f"an array of shape {enc.shape}"
            _codecs.check_precision(produce(), dtype, precision, where)
        source_dtype, original = dtype, produce
        dtype = _codecs.stored_dtype(precision)
        nbytes = nbytes // source_dtype.itemsize * dtype.itemsize
        extra = {"cast": _format.dtype_to_json(source_dtype), "precision": precision}

        def produce() -> Iterable[memoryview]:
            return _codecs.reduce_precision(original(), source_dtype, precision, clamp_precision)

    meta: dict[str, Any] = {
        "dtype": _format.dtype_to_json(dtype),
        "shape": list(enc.shape),
        "order": enc.order,
        "namespace": ref.handler.namespace,
        "device": enc.device,
    }
    if enc.meta or extra:
        meta["meta"] = {**enc.meta, **extra}
    if label is not None:
        meta["path"] = label
    if progress is not None:
        progress.total += enc.nbytes
    if codec is not None and nbytes >= _codecs.MIN_COMPRESS_BYTES:
        meta["codec"] = codec[0]
        return BlobSource(meta, -1, _codecs.compress_chunks(_lazy(produce, progress), *codec))
    return BlobSource(meta, nbytes, _lazy(produce, progress))


def _lazy(produce: Any, progress: Progress | None = None) -> Iterator[memoryview]:
    if progress is None:
        yield from produce()
    else:
        yield from progress.counted(produce())


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
        Compress arrays of 4 KiB or more, with joblib's conventions: an int 0-9 is a
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
    bar = Progress(0, "saving", progress)
    graph, blobs, manifest = _prepare(
        obj,
        compress=compress,
        precision=precision,
        progress=bar,
        clamp_precision=clamp_precision,
        user_metadata=metadata,
    )
    buf = io.BytesIO()
    _format.write_container(buf, graph, blobs, manifest)
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
    bar = Progress(0, "saving", progress)
    graph, blobs, manifest = _prepare(
        obj,
        compress=compress,
        precision=precision,
        progress=bar,
        clamp_precision=clamp_precision,
        user_metadata=metadata,
    )
    if _remote.is_url(file):
        with _remote.writer(file, storage_options) as f:  # type: ignore[arg-type]
            _format.write_container(f, graph, blobs, manifest)
    elif isinstance(file, (str, os.PathLike)):
        with atomic_target(os.fspath(file)) as f:
            _format.write_container(f, graph, blobs, manifest)
    elif hasattr(file, "write"):
        _binary(file, "wb")
        _format.write_container(file, graph, blobs, manifest)
    else:
        raise TypeError(f"file must be a path or a binary file object, not {type(file).__name__}")
    bar.close()


# --------------------------------------------------------------------------- loading


def _binary(file: Any, mode: str) -> None:
    """A text-mode file object would fail deep inside the reader or writer."""
    if isinstance(file, io.TextIOBase):
        name = getattr(file, "name", None)
        where = f" ({name!r})" if isinstance(name, str) else ""
        raise TypeError(
            f"the file object{where} is open in text mode; devpersist files are binary: "
            f"open it with mode {mode!r}"
        )


@contextmanager
def _source(
    file: Any, mmap: bool = False, storage_options: dict[str, Any] | None = None, whole: bool = True
) -> Iterator[_format.Source]:
    if isinstance(file, (bytes, bytearray, memoryview)):
        yield _format.BufferSource(file)
    elif _remote.is_url(file):
        with _remote.reader(file, storage_options, whole) as (content, size):
            if isinstance(content, bytes):
                yield _format.BufferSource(content)
            else:
                yield _format.FileSource(content, 0, size)
    elif isinstance(file, (str, os.PathLike)):
        with open(os.fspath(file), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if mmap and size:
                import mmap as _mmap

                # copy-on-write, so that torch tensors (which cannot be read-only) may be
                # written without reaching the file; numpy arrays are marked read-only.
                # The mapping outlives the file: arrays keep it alive through their base.
                yield _format.BufferSource(_mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_COPY))
            else:
                yield _format.FileSource(f, 0, size)
    elif hasattr(file, "read"):
        _binary(file, "rb")
        seekable = getattr(file, "seekable", lambda: False)()
        if seekable:
            start = file.tell()
            end = file.seek(0, io.SEEK_END)
            yield _format.FileSource(file, start, end - start)
            file.seek(end)
        else:
            yield _format.BufferSource(file.read())
    else:
        raise TypeError(
            f"file must be a path, a binary file object or bytes, not {type(file).__name__}"
        )


def _audit(container: Container, trusted: frozenset[str]) -> tuple[bytes, Any]:
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


def _load(container: Container, options: dict[str, Any]) -> Any:
    manifest = container.manifest
    placement = Placement(
        device=options["device"],
        namespace=options["namespace"],
        fallback=options["fallback"],
        restore_precision=options["restore_precision"],
        mmap=options["mmap"],
        verify=options["verify"],
    )
    if options["mmap"]:
        _codecs.warn_decoded(container.arrays)
    config = manifest.get("config")  # validated with the manifest, like the environment
    mismatch = _check_versions(manifest, options["strict"])
    trusted = normalize_trusted(options["trusted"])
    graph, result = _audit(container, trusted)  # imports nothing
    with _config.environment_for(
        config if options["restore_config"] else None, placement.namespace
    ):
        approved = resolve(result.names, trusted)  # imports scikit-learn (and so scipy)
        check_uses(result.called, result.modified, approved, trusted)
    placement.check(container.arrays)  # libraries and devices, before anything is built
    _config.check_placement(config, container.arrays, placement.planned)
    planned = _config.plan(config, placement) if options["restore_config"] else None
    if planned and not _config.needs_restoring(planned):
        planned = None  # scikit-learn's defaults: nothing to apply, nothing to wrap
    quiet = warnings.catch_warnings() if mismatch else contextlib.nullcontext()
    with placement.active(), _config.applied(_config.for_building(planned)), quiet:
        if mismatch:  # already reported, in one table: silence scikit-learn's own
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator")
        arrays = _decode_all(container, placement, options["progress"])
        obj = load_graph(graph, approved, arrays)
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


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """The load options, checked before any byte is read."""
    options = {k: v for k, v in given.items() if k not in ("file", "data", "storage_options")}
    options.setdefault("mmap", False)
    if options.get("verify") is None:
        options["verify"] = not options["mmap"]
    Placement(
        device=options["device"], namespace=options["namespace"], fallback=options["fallback"]
    )
    return options


def load(
    file: FileLike,
    *,
    trusted: Iterable[Any] | None = None,
    device: Any = None,
    namespace: str | None = None,
    fallback: str = "host",
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
    options = _options(locals())
    with _source(file, mmap=mmap, storage_options=storage_options) as source:
        return _load(Container.open(source), options)


def loads(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Iterable[Any] | None = None,
    device: Any = None,
    namespace: str | None = None,
    fallback: str = "host",
    restore_config: bool = True,
    restore_precision: bool = True,
    strict: bool = False,
    progress: bool | None = False,
) -> Any:
    """Load an object from bytes made by :func:`dumps`; see :func:`load`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() takes bytes, not {type(data).__name__}")
    options = _options(locals())
    return _load(Container.open(_format.BufferSource(data)), options)


@contextmanager
def config_context(
    file: FileLike | bytes,
    *,
    namespace: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Run a block under the configuration recorded in ``file``.

    For saved objects that are not estimators (a dict of models, say), whose methods
    :func:`load` cannot wrap. ``namespace`` adjusts it as :func:`load` would.
    """
    config = info(file, storage_options=storage_options).get("config")
    if config is not None:
        _config.validate(config)
    _config.prepare_environment(config, namespace)
    with _config.applied(_config.plan(config, Placement(namespace=namespace))):
        yield


def info(
    file: FileLike | bytes, *, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of a file: what it holds, without unpickling or building anything.

    Only the header, the trailer and the manifest are read (three small ranged reads for
    a URL); array bytes are not. ``config["required"]`` is what the model needs (restored
    on load); ``config["sklearn"]``/``["sklearnex"]`` were in force at dump. When some
    estimator's arrays were saved in more than one library or device, the derived key
    ``mixed_placements`` maps its path to those ``[namespace, device]`` pairs.
    """
    with _source(file, storage_options=storage_options, whole=False) as source:
        container = Container.open(source)
        found = {**container.manifest, "file_size": source.size}
    mixed = _config.mixed(found.get("config"))
    if mixed:  # derived, not stored: estimators whose arrays are in several places
        found["mixed_placements"] = mixed
    return found


def get_untrusted_types(
    file: FileLike | bytes,
    *,
    trusted: Iterable[Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Exactly the names :func:`load` (with the same ``trusted``) would refuse.

    The object graph is audited, not loaded: nothing it names is built, and the only
    modules imported are on the allowlist's fixed list (to check a class). Each refused
    name's reason is in ``devpersist.load``'s error (``UntrustedTypeError.reasons``).
    """
    trusted_names = normalize_trusted(trusted)
    with _source(file, storage_options=storage_options, whole=False) as source:
        container = Container.open(source)
        result = audit(container.graph(), len(container.arrays))
    return list(audit_refusals(result, trusted_names))  # imports nothing for table names


def verify(
    file: FileLike | bytes, *, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check every checksum and the whole structure of a file, building nothing.

    Reads every byte: the manifest, the object graph (audited, not loaded), and each
    array (decompressed into scratch memory when compressed, to check its size).

    Returns
    -------
    dict
        ``{"arrays": n, "bytes": size, "untrusted": [...]}`` when the file is intact.

    Raises
    ------
    FormatError, IntegrityError
        What is wrong, and where.
    """
    with _source(file, storage_options=storage_options) as source:
        container = Container.open(source)
        container.check_padding()
        result = audit(container.graph(), len(container.arrays))
        names = result.names
        declared = {tuple(n) for n in container.manifest["globals"]}
        if names != declared:
            raise IntegrityError("the manifest's list of globals does not match the object graph")
        for index, entry in enumerate(container.arrays):
            blob = container.stored_blob(index)
            if "codec" in entry:
                scratch = bytearray(_format.decoded_size(entry))
                _codecs.decompress_stored(entry["codec"], blob, memoryview(scratch))
            else:
                blob.finish()
        return {
            "arrays": len(container.arrays),
            "bytes": source.size,
            "untrusted": list(audit_refusals(result)),
        }
