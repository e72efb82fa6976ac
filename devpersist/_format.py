"""The devpersist container, format version 1 (specified byte by byte in docs/format.md).

Layout (all integers little-endian)::

    offset 0      header   16 bytes  magic (8) | format version u32 | flags u32 (0)
    align 64      graph    the object graph: a pickle protocol 5 stream, no array bytes
    align 64      blob 0   raw bytes of array 0
    align 64      blob 1   ...
    align 64      manifest UTF-8 JSON object (sections table, arrays table, metadata)
                  trailer  40 bytes  manifest offset u64 | manifest length u64 |
                                     manifest xxh3-64 u64 | format version u32 |
                                     reserved u32 (0) | end magic (8)

Every byte is accounted for: sections follow each other at the next multiple of 64,
padding bytes are zero, and the file ends exactly after the trailer, so truncation,
appended bytes and flipped bits are all detected. The manifest sits at the end so that
the writer streams (checksums are known only after the bytes are written) and so that
``info`` needs two small ranged reads (trailer, then manifest), never the arrays.

This module knows nothing about Python objects or array libraries: it moves checksummed
byte ranges and validates a manifest.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import IO, Any

import xxhash

from ._exceptions import (
    FormatError,
    IntegrityError,
    NotDevpersistError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
    shown,
)
from ._pipeline import (
    PIPELINE_BYTES,
    READ_CHUNK,
    Worker,
    read_hashed,
    read_staged,
    staged_reads,
    write_hashed,
)
from .arrays import decoded_size as decoded_size  # re-exported for cli and _api
from .arrays import dtype_from_descr, dtype_to_descr, namespaces

MAGIC = b"\x89DVP\r\n\x1a\n"
END_MAGIC = b"DVP1END\n"
FORMAT_VERSION = 1
ALIGNMENT = 64
HEADER = struct.Struct("<8sII")
TRAILER = struct.Struct("<QQQII8s")
MAX_MANIFEST_BYTES = 64 * 2**20
#: JSON objects and arrays (``{``, ``[``) in a manifest: at most one per this many bytes
#: (a real manifest has one per 20 bytes or more: a forest's is about 30), or this many.
MANIFEST_BYTES_PER_CONTAINER = 16
MIN_MANIFEST_CONTAINERS = 10_000
CHECKSUM_PREFIX = "xxh3_64:"

_ZEROS = bytes(ALIGNMENT)


def align(n: int) -> int:
    """The smallest multiple of ``ALIGNMENT`` that is >= ``n``."""
    return -(-n // ALIGNMENT) * ALIGNMENT


def checksum_text(digest: int) -> str:
    return f"{CHECKSUM_PREFIX}{digest:016x}"


# --------------------------------------------------------------------------- writing


@dataclass
class BlobSource:
    """One array's bytes as the writer streams them: chunks, in storage order."""

    meta: dict[str, Any]
    nbytes: int
    chunks: Iterable[memoryview | bytes]


class _CountingWriter:
    """Write to ``f`` and count bytes; offsets in the file are relative to its start."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.pos = 0

    def write(self, data: bytes | memoryview) -> None:
        n = self._f.write(data)
        # raw files may write less than asked; buffered ones never do
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if n is not None and n != size:
            view = memoryview(data).cast("B")
            while n < size:
                written = self._f.write(view[n:])
                if not written:
                    raise OSError("short write")
                n += written
        self.pos += size

    def pad(self) -> int:
        start = align(self.pos)
        if start != self.pos:
            self.write(_ZEROS[: start - self.pos])
        return start


def write_container(
    f: IO[bytes],
    graph: bytes,
    blobs: Iterable[BlobSource],
    metadata: dict[str, Any],
) -> int:
    """Stream a complete container to ``f``; return the number of bytes written.

    ``blobs`` is consumed lazily: each chunk is checksummed and written (overlapped, for
    a large one) before the next is asked for, so the producer may reuse its memory.
    """
    with Worker() as worker:
        return _write_container(_CountingWriter(f), graph, blobs, metadata, worker)


def _write_container(
    out: _CountingWriter,
    graph: bytes,
    blobs: Iterable[BlobSource],
    metadata: dict[str, Any],
    worker: Worker,
) -> int:
    out.write(HEADER.pack(MAGIC, FORMAT_VERSION, 0))
    graph_offset = out.pad()
    out.write(graph)
    arrays: list[dict[str, Any]] = []
    for blob in blobs:
        offset = out.pad()
        hasher = xxhash.xxh3_64()
        written = 0
        for chunk in blob.chunks:
            written += write_hashed(out.write, chunk, hasher, worker)
        if blob.nbytes >= 0 and written != blob.nbytes:
            raise FormatError(
                f"array {len(arrays)} produced {written} bytes, expected {blob.nbytes}"
            )
        arrays.append(
            {
                **blob.meta,
                "offset": offset,
                "length": written,
                "checksum": checksum_text(hasher.intdigest()),
            }
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "alignment": ALIGNMENT,
        "graph": {
            "offset": graph_offset,
            "length": len(graph),
            "checksum": checksum_text(xxhash.xxh3_64_intdigest(graph)),
        },
        "arrays": arrays,
        **metadata,
    }
    encoded = json.dumps(
        manifest, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    manifest_offset = out.pad()
    out.write(encoded)
    out.write(
        TRAILER.pack(
            manifest_offset,
            len(encoded),
            xxhash.xxh3_64_intdigest(encoded),
            FORMAT_VERSION,
            0,
            END_MAGIC,
        )
    )
    return out.pos


# --------------------------------------------------------------------------- reading


def _is_zlib(head: bytes) -> bool:
    """A zlib stream header (joblib's default compression): 0x78 and a valid check."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def sniff(head: bytes) -> str:
    """Say in words what a non-devpersist file looks like, and what to do with it."""
    if not head:
        return "the data is empty"
    if head[:2] == b"PK":
        return (
            "it looks like a zip archive (a skops or torch.save file?); convert it with "
            "devpersist.convert if you trust its source"
        )
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return (
            f"it looks like a pickle stream (protocol {head[1]}), as written by pickle "
            "or joblib; devpersist never unpickles it, convert it with devpersist.convert "
            "if you trust its source"
        )
    if _is_zlib(head) or head[:2] == b"ZF" or head[:3] == b"\x1f\x8b\x08":
        return "it looks like a compressed joblib file; convert it if you trust its source"
    if head[:4] == b"\x28\xb5\x2f\xfd" or head[:6] == b"\xfd7zXZ\x00" or head[:3] == b"BZh":
        return "it looks like a compressed file (zstd, xz or bz2), not a devpersist file"
    if len(head) >= 10 and head[8:10] == b'{"':
        return "it looks like a safetensors file; load it with the safetensors library"
    return f"it starts with {head[:8]!r}, not the devpersist magic {MAGIC!r}"


@dataclass(frozen=True)
class Trailer:
    manifest_offset: int
    manifest_length: int
    manifest_checksum: int
    version: int


def parse_header(head: bytes) -> int:
    """Check the 16-byte header; return the format version."""
    if len(head) < HEADER.size or head[:8] != MAGIC:
        raise NotDevpersistError(f"not a devpersist file: {sniff(bytes(head[:16]))}")
    _, version, flags = HEADER.unpack(head[: HEADER.size])
    _check_version(version)
    if flags != 0:
        raise IntegrityError(f"header flags are {flags:#x}; format 1 defines none")
    return int(version)


def _check_version(version: int) -> None:
    if version > FORMAT_VERSION:
        from ._version import __version__

        raise UnsupportedFormatVersionError(
            f"the file is format version {version}; devpersist {__version__} reads "
            f"format version {FORMAT_VERSION} and older: upgrade devpersist to load it"
        )
    if version < 1:
        raise IntegrityError(f"format version {version} in the header is not valid")


def parse_trailer(tail: bytes, size: int, header_version: int) -> Trailer:
    """Check the trailer (the last 40 bytes) against the file size."""
    if len(tail) != TRAILER.size:
        raise IntegrityError("the file is truncated: no room for the trailer")
    offset, length, digest, version, reserved, end = TRAILER.unpack(tail)
    if end != END_MAGIC:
        raise IntegrityError(
            "the file does not end with the devpersist trailer: it is truncated or has "
            "bytes appended"
        )
    if version != header_version:
        raise IntegrityError(
            f"format version {header_version} in the header but {version} in the trailer"
        )
    if reserved != 0:
        raise IntegrityError("reserved trailer field is not zero")
    if length > MAX_MANIFEST_BYTES:
        raise ResourceLimitError(
            f"manifest of {length} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit "
            "(MAX_MANIFEST_BYTES)"
        )
    if offset < ALIGNMENT or offset % ALIGNMENT or offset + length + TRAILER.size != size:
        raise IntegrityError(
            f"manifest at {offset} of {length} bytes does not end where the file's "
            f"{size} bytes do: the file is truncated or has bytes appended"
        )
    return Trailer(offset, length, digest, version)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise FormatError(f"duplicate key {shown(dup)} in the manifest")
    return result


def _reject_constant(name: str) -> None:
    raise FormatError(f"non-standard JSON constant {name} in the manifest")


def parse_manifest(raw: bytes | memoryview, trailer: Trailer) -> dict[str, Any]:
    raw = bytes(raw)
    if xxhash.xxh3_64_intdigest(raw) != trailer.manifest_checksum:
        raise IntegrityError("manifest checksum mismatch: the file is corrupted")
    if raw[:1] != b"{" or raw[-1:] != b"}":
        raise FormatError("the manifest must be a JSON object with no surrounding whitespace")
    # JSON objects and arrays cost ~100 bytes of memory each for 2 bytes of text: count
    # them (brackets inside strings too: an over-estimate) before the parser builds them
    containers = raw.count(b"{") + raw.count(b"[")
    allowed = max(MIN_MANIFEST_CONTAINERS, len(raw) // MANIFEST_BYTES_PER_CONTAINER)
    if containers > allowed:
        raise ResourceLimitError(
            f"the manifest holds {containers} JSON objects and arrays, more than the "
            f"{allowed} its {len(raw)} bytes allow (limit MANIFEST_BYTES_PER_CONTAINER)"
        )
    try:
        manifest = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise FormatError("the manifest is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"the manifest is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ResourceLimitError(
            "the manifest is nested too deeply (limit: the JSON parser's recursion limit)"
        ) from exc
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise FormatError(f"the manifest holds an invalid value: {exc}") from exc
    validate_manifest(manifest, trailer)
    return manifest  # type: ignore[no-any-return]


# Keys of the manifest and of its entries. Unknown keys are rejected: a writer that adds
# one must bump the format version (see docs/format.md, "Changing the format").
MANIFEST_KEYS = {
    "format_version": int,
    "alignment": int,
    "graph": dict,
    "arrays": list,
    "globals": list,
    "object": dict,
    "environment": dict,
    "config": dict,
    "metadata": dict,  # the user's own JSON (dump's metadata=), shown, never interpreted
}
REQUIRED_KEYS = ("format_version", "alignment", "graph", "arrays", "globals")
GRAPH_KEYS = {"offset": int, "length": int, "checksum": str}
ARRAY_KEYS = {
    "offset": int,
    "length": int,
    "checksum": str,
    "dtype": (str, list),
    "shape": list,
    "order": str,
    "namespace": str,
    "device": str,
    "meta": dict,
    "path": str,
    "codec": str,
}
#: Per-array ``meta`` keys and their types (what handlers may record).
META_KEYS = {
    "writeable": bool,  # numpy: False for read-only arrays
    "dtype": str,  # the library's own dtype name when it differs (bfloat16)
    "requires_grad": bool,  # torch
    "parameter": bool,  # torch.nn.Parameter
    "cast": (str, list),  # precision option: the dtype to restore on load
    "precision": str,  # precision option: "float16" or "bfloat16"
    "usm_type": str,  # dpnp: the USM allocation type ("device", "shared", "host")
}
#: Compression codecs a reader may meet; ``length`` is then the compressed size.
CODECS = ("zstd", "lz4", "zlib", "lzma")
ARRAY_REQUIRED = ("offset", "length", "checksum", "dtype", "shape", "order", "namespace", "device")
_CHECKSUM_RE = re.compile(r"xxh3_64:[0-9a-f]{16}\Z")
MAX_NDIM = 64
MAX_DIM = 2**48
#: One array's decoded size, and the most a codec may expand data (zstd on zeros
#: reaches about 30,000:1; a bomb reaches far more).
MAX_ARRAY_BYTES = 2**46
#: One array's element count, zero dimensions aside (0-byte ``V0`` elements included).
MAX_ELEMENTS = 2**46
#: ``meta.precision`` values and the dtype each is stored as.
PRECISIONS = {"float16": "<f2", "bfloat16": "<u2"}
MAX_RATIO = 100_000


def _check_keys(where: str, obj: Any, spec: dict[str, Any], required: Iterable[str]) -> None:
    if not isinstance(obj, dict):
        raise FormatError(f"{where} is not a JSON object")
    for key, value in obj.items():
        if key not in spec:
            raise FormatError(f"unknown key {shown(key)} in {where}")
        expected = spec[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise FormatError(f"{where}[{key!r}] has the wrong type")
    for key in required:
        if key not in obj:
            raise FormatError(f"{where} lacks the key {key!r}")


def validate_manifest(manifest: Any, trailer: Trailer) -> None:
    """Check every field the reader relies on, before anything is read or allocated."""
    _check_keys("the manifest", manifest, MANIFEST_KEYS, REQUIRED_KEYS)
    if "object" in manifest:
        _check_keys("the manifest's object", manifest["object"], {"type": str}, ("type",))
    if manifest["format_version"] != trailer.version:
        raise IntegrityError("format version in the manifest differs from the trailer")
    if manifest["alignment"] != ALIGNMENT:
        raise FormatError(f"alignment {manifest['alignment']} is not {ALIGNMENT}")
    graph = manifest["graph"]
    _check_keys("the graph section", graph, GRAPH_KEYS, GRAPH_KEYS)
    expected = align(HEADER.size)
    ranges = [("the graph", graph)] + [
        (f"array {i}", entry) for i, entry in enumerate(manifest["arrays"])
    ]
    for name, entry in ranges:
        if name != "the graph":
            _check_keys(f"the manifest's {name}", entry, ARRAY_KEYS, ARRAY_REQUIRED)
            _validate_array_entry(name, entry)
        if not _CHECKSUM_RE.match(entry["checksum"]):
            raise FormatError(f"{name}: malformed checksum {shown(entry['checksum'])}")
        if entry["offset"] != expected or entry["length"] < 0:
            raise IntegrityError(
                f"{name} starts at {entry['offset']}, expected {expected}: sections "
                "must follow each other in order, without holes or overlaps"
            )
        expected = align(entry["offset"] + entry["length"])
    if expected != trailer.manifest_offset:
        raise IntegrityError(
            f"the last section ends before {expected} but the manifest starts at "
            f"{trailer.manifest_offset}"
        )
    for item in manifest["globals"]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise FormatError("the manifest's globals must be [module, name] pairs")
    if "environment" in manifest:
        from ._environment import validate_environment

        validate_environment(manifest["environment"])
    if "config" in manifest:
        from ._config import validate as validate_config

        validate_config(manifest["config"])


def _validate_meta(name: str, meta: dict[str, Any], dtype: Any) -> None:
    """``precision=`` records: a known precision, stored as it says, and a floating
    dtype wider than 2 bytes to restore (what the writer records, nothing else)."""
    if ("precision" in meta) != ("cast" in meta):
        raise FormatError(f"{name}: meta 'precision' and 'cast' go together")
    if "precision" not in meta:
        return
    precision = meta["precision"]
    if precision not in PRECISIONS:
        raise FormatError(f"{name}: unknown precision {shown(precision)}")
    if dtype.str != PRECISIONS[precision] or "dtype" in meta:
        raise FormatError(f"{name}: precision {precision} is stored as {PRECISIONS[precision]}")
    cast = storage_dtype(meta["cast"], name)
    if cast.kind != "f" or cast.itemsize <= 2:
        raise FormatError(f"{name}: precision= only applies to floating dtypes wider than 2 bytes")


def _validate_array_entry(name: str, entry: dict[str, Any]) -> None:
    if "meta" in entry:
        _check_keys(f"{name}'s meta", entry["meta"], META_KEYS, ())
    codec = entry.get("codec")
    if codec is not None and codec not in CODECS:
        raise FormatError(f"{name}: unknown codec {shown(codec)}")
    if entry["namespace"] not in namespaces():
        raise FormatError(f"{name}: unknown array namespace {shown(entry['namespace'])}")
    if len(entry["device"]) > 256:
        raise FormatError(f"{name}: device name too long")
    shape = entry["shape"]
    if len(shape) > MAX_NDIM or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_DIM for n in shape
    ):
        raise FormatError(f"{name}: invalid shape {shown(shape)}")
    if entry["order"] not in ("C", "F"):
        raise FormatError(f"{name}: invalid order {shown(entry['order'])}")
    dtype = storage_dtype(entry["dtype"], name)
    if "meta" in entry:
        _validate_meta(name, entry["meta"], dtype)
    # Every factor is checked as it comes, zeros aside, so that no product grows past
    # the limits (numpy refuses a shape whose non-zero dimensions overflow its index
    # type even when another dimension is 0, and loads 0-byte elements in any number).
    nonzero = 1
    for n in shape:
        if n:
            nonzero *= n
            if nonzero > MAX_ELEMENTS:
                raise ResourceLimitError(
                    f"{name}: shape {tuple(shape)} has more than {MAX_ELEMENTS} elements "
                    "(limit MAX_ELEMENTS, zero dimensions aside)"
                )
    count = nonzero if all(shape) else 0
    size = nonzero * max(dtype.itemsize, 1)
    if size > MAX_ARRAY_BYTES:
        raise ResourceLimitError(
            f"{name}: {size} bytes exceeds the {MAX_ARRAY_BYTES}-byte limit (MAX_ARRAY_BYTES)"
        )
    size = count * dtype.itemsize
    if codec is not None and size > max(2**20, MAX_RATIO * entry["length"]):
        raise ResourceLimitError(
            f"{name}: {entry['length']} compressed bytes cannot honestly expand to {size}"
        )
    if codec is None and size != entry["length"]:
        raise IntegrityError(
            f"{name}: shape {tuple(shape)} of {dtype} needs {count * dtype.itemsize} "
            f"bytes but {entry['length']} are declared"
        )


# The dtype grammar lives with the array handlers (one dtype table): re-exported here.
storage_dtype = dtype_from_descr
dtype_to_json = dtype_to_descr


# --------------------------------------------------------------------------- sources


class Source:
    """Random access to a container's bytes, over a buffer or a seekable file."""

    size: int
    #: Does ``readinto`` release the GIL (a file), so that a worker thread's reads
    #: overlap the caller's checksumming? (A buffer copy does not.)
    overlaps: bool = False

    def read(self, offset: int, length: int) -> memoryview:  # pragma: no cover - abstract
        raise NotImplementedError

    def readinto(self, offset: int, out: memoryview) -> None:
        out[:] = self.read(offset, out.nbytes)


class BufferSource(Source):
    def __init__(self, buffer: Any) -> None:
        self._view = memoryview(buffer).cast("B")
        self.size = self._view.nbytes

    def read(self, offset: int, length: int) -> memoryview:
        return self._view[offset : offset + length]


class FileSource(Source):
    """A seekable binary file; reads go straight into caller-owned memory."""

    overlaps = True

    def __init__(self, f: IO[bytes], start: int, size: int) -> None:
        self._f = f
        self._start = start
        self.size = size

    def read(self, offset: int, length: int) -> memoryview:
        buf = bytearray(length)
        self.readinto(offset, memoryview(buf))
        return memoryview(buf)

    def readinto(self, offset: int, out: memoryview) -> None:
        self._f.seek(self._start + offset)
        view = out.cast("B")
        got = 0
        while got < view.nbytes:
            n = self._f.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                raise IntegrityError("the file ended early: it is truncated")
            got += n


@dataclass
class Container:
    """A validated container: its manifest, and checked access to its sections."""

    source: Source
    manifest: dict[str, Any]

    @classmethod
    def open(cls, source: Source) -> Container:
        if source.size < HEADER.size:
            head = bytes(source.read(0, source.size))
            if head[:8] == MAGIC[: len(head)] and head:
                raise IntegrityError("the file is truncated inside its header")
            raise NotDevpersistError(f"not a devpersist file: {sniff(head)}")
        version = parse_header(bytes(source.read(0, HEADER.size)))
        if source.size < align(HEADER.size) + TRAILER.size:
            raise IntegrityError("the file is truncated")
        tail = bytes(source.read(source.size - TRAILER.size, TRAILER.size))
        trailer = parse_trailer(tail, source.size, version)
        raw = source.read(trailer.manifest_offset, trailer.manifest_length)
        return cls(source, parse_manifest(raw, trailer))

    @property
    def arrays(self) -> list[dict[str, Any]]:
        return self.manifest["arrays"]  # type: ignore[no-any-return]

    def graph(self) -> bytes:
        entry = self.manifest["graph"]
        data = bytes(self.source.read(entry["offset"], entry["length"]))
        _verify(data, entry, "the object graph")
        return data

    def worker(self) -> Worker:
        """A worker for overlapped reads of this container (close it when done)."""
        return Worker(enabled=self.source.overlaps)

    def read_array_into(self, index: int, out: memoryview, worker: Worker | None = None) -> None:
        """Read array ``index``'s bytes into ``out`` and verify its checksum."""
        entry = self.arrays[index]
        if out.nbytes != entry["length"]:
            stored = entry["length"]
            raise FormatError(f"array {index}: {stored} bytes stored, {out.nbytes} expected")
        with _borrowed(worker, self) as w:
            digest = read_hashed(self.source.readinto, entry["offset"], out, w)
        _check_digest(digest, entry, f"array {index}")

    def stream_array(
        self,
        index: int,
        buffers: Sequence[memoryview],
        consume: Callable[[int, int, int], Any],
        wait: Callable[[Any], None],
        worker: Worker | None = None,
    ) -> None:
        """Stream array ``index``'s bytes through staging ``buffers`` (see
        :func:`devpersist._pipeline.read_staged`), then verify its checksum."""
        entry = self.arrays[index]
        with _borrowed(worker, self) as w:
            digest = read_staged(
                self.source.readinto, entry["offset"], entry["length"], buffers, consume, wait, w
            )
        _check_digest(digest, entry, f"array {index}")

    def stored_blob(self, index: int, worker: Worker | None = None) -> StoredBlob:
        """Array ``index``'s stored (e.g. compressed) bytes, piece by piece; see
        :class:`StoredBlob`."""
        return StoredBlob(self, index, worker)

    def array_view(self, index: int, verify: bool = True) -> memoryview:
        """Array ``index``'s bytes without a copy (buffer sources only)."""
        entry = self.arrays[index]
        view = self.source.read(entry["offset"], entry["length"])
        if verify:
            _verify(view, entry, f"array {index}")
        return view

    def check_padding(self) -> None:
        """Every byte between sections must be zero (cheap: at most 63 bytes each)."""
        ends = [(HEADER.size, self.manifest["graph"]["offset"])]
        entries = [self.manifest["graph"], *self.arrays]
        for prev, nxt in zip(entries, entries[1:] + [None]):
            end = prev["offset"] + prev["length"]
            start = nxt["offset"] if nxt is not None else align(end)
            ends.append((end, start))
        for start, stop in ends:
            if stop > start and any(self.source.read(start, stop - start)):
                raise IntegrityError(f"non-zero padding bytes at offset {start}")


class StoredBlob:
    """One array's stored bytes, in order, in pieces of at most ``READ_CHUNK`` bytes.

    Iterating yields each piece (a view valid until the next one is asked for) while the
    worker reads the next one; every piece is hashed on the way. :meth:`finish` reads
    what was not consumed and raises :class:`~devpersist.IntegrityError` if the checksum
    does not match, so a consumer that fails on corrupted bytes can report the
    corruption, not its symptom. Host memory: two pieces, whatever the array's size.
    """

    def __init__(self, container: Container, index: int, worker: Worker | None) -> None:
        entry = container.arrays[index]
        self._entry, self._what = entry, f"array {index}"
        self._hasher = xxhash.xxh3_64()
        self._pieces = self._read(container, entry["offset"], entry["length"], worker)

    def __iter__(self) -> Iterator[memoryview]:
        return self._pieces

    def _read(
        self, container: Container, offset: int, length: int, worker: Worker | None
    ) -> Iterator[memoryview]:
        source = container.source
        if not source.overlaps:  # a buffer: views of it, no copies
            for start in range(0, length, READ_CHUNK):
                view = source.read(offset + start, min(READ_CHUNK, length - start))
                self._hasher.update(view)
                yield view
            return
        if not length:
            return
        import numpy as np  # (numpy memory: huge pages for large pieces)

        size = min(READ_CHUNK, length)
        buffers = [np.empty(size, dtype=np.uint8).data for _ in range(min(-(-length // size), 2))]
        if length < PIPELINE_BYTES:
            worker = Worker(enabled=False)  # small: a thread handoff costs more than it saves
        with _borrowed(worker, container) as w:
            chunks = staged_reads(source.readinto, offset, length, buffers, w, self._hasher)
            with closing(chunks):
                for _, _, view in chunks:
                    yield view

    def finish(self) -> None:
        for _ in self._pieces:
            pass
        _check_digest(self._hasher.intdigest(), self._entry, self._what)


def _verify(data: bytes | memoryview, entry: dict[str, Any], what: str) -> None:
    _check_digest(xxhash.xxh3_64_intdigest(data), entry, what)


def _check_digest(digest: int, entry: dict[str, Any], what: str) -> None:
    if checksum_text(digest) != entry["checksum"]:
        raise IntegrityError(f"checksum mismatch in {what}: the file is corrupted")


@contextmanager
def _borrowed(worker: Worker | None, container: Container) -> Iterator[Worker]:
    """``worker``, or a fresh one closed on exit."""
    if worker is not None:
        yield worker
    else:
        with container.worker() as fresh:
            yield fresh
