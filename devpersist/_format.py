"""The devpersist container: opening it, and checked access to its sections.

Layout (all integers little-endian; docs/format.md specifies both versions byte by byte)::

    offset 0      header   16 bytes  magic (8) | format version u32 | flags u32 (0)
    align 64      graph    the object graph: a pickle protocol 5 stream, no array bytes
                           (v2: compressed with compress=)
    align 64      pack     v2: the arrays of at most 64 KiB, one after the other, one
                           checksum (compressed with compress=)
    align 64      blob i   raw (or compressed) bytes of each other array
    align 64      manifest UTF-8 JSON object (sections, arrays table, metadata)
                  trailer  40 bytes  manifest offset u64 | manifest length u64 |
                                     manifest xxh3-64 u64 | format version u32 |
                                     reserved u32 (0) | end magic (8)

Every byte is accounted for: sections follow each other at the next multiple of 64,
padding bytes are zero, and the container ends exactly after the trailer, so
truncation, appended bytes and flipped bits are all detected. The manifest sits at the
end so that the writer streams (checksums are known only after the bytes are written)
and so that ``info`` needs two small ranged reads (trailer, then manifest).

Place in the data flow: below the load orchestration, above the byte sources
(:mod:`devpersist._sources`). The framing is :mod:`devpersist._protocol`, the manifest
:mod:`devpersist._manifest` (v1) and :mod:`devpersist._columns` (v2), the writer
:mod:`devpersist._writer`. This module knows nothing about Python objects, array
libraries, scikit-learn or the environment: it moves checksummed byte ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from ._columns import validate_v2
from ._exceptions import FormatError, IntegrityError, NotDevpersistError
from ._manifest import MAX_RATIO, parse_json, validate_v1
from ._pipeline import PIPELINE_BYTES, READ_CHUNK, Worker, read_hashed, read_staged, staged_reads
from ._protocol import (
    ALIGNMENT,
    END_MAGIC,
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    MAX_MANIFEST_BYTES,
    PACK_MAX_BYTES,
    TRAILER,
    Trailer,
    align,
    checksum_text,
    parse_header,
    parse_trailer,
)
from ._sniff import sniff
from ._sources import BufferSource, FileSource, Source, read_stream
from ._writer import BlobSource, Compression, write_container

if TYPE_CHECKING:
    from .arrays import ArrayEntry
    from .arrays._base import HostArray

__all__ = [
    "ALIGNMENT",
    "END_MAGIC",
    "FORMAT_VERSION",
    "HEADER",
    "MAGIC",
    "MAX_MANIFEST_BYTES",
    "MAX_RATIO",
    "PACK_MAX_BYTES",
    "TRAILER",
    "BlobSource",
    "BufferSource",
    "Compression",
    "Container",
    "FileSource",
    "Source",
    "StoredBlob",
    "Trailer",
    "align",
    "checksum_text",
    "parse_header",
    "parse_trailer",
    "read_stream",
    "write_container",
]


def parse_manifest(raw: bytes | memoryview, trailer: Trailer) -> dict[str, Any]:
    """The validated manifest, with its arrays as rows (one dict per array) in every
    version."""
    manifest = parse_json(raw, trailer)
    if trailer.version == 1:
        validate_v1(manifest, trailer)
    else:
        manifest["arrays"] = validate_v2(manifest, trailer)
    return manifest


@dataclass
class Container:
    """A validated container: its manifest, and checked access to its sections."""

    source: Source
    manifest: dict[str, Any]
    #: v2: the pack's (decompressed) bytes once read and verified.
    _pack: memoryview | None = field(default=None, repr=False)
    _pack_verified: bool = field(default=False, repr=False)
    #: v2: one writable copy of the verified pack, that packed arrays are views of.
    _pack_copy: HostArray | None = field(default=None, repr=False)

    @property
    def version(self) -> int:
        return int(self.manifest["format_version"])

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
    def arrays(self) -> list[ArrayEntry]:
        return self.manifest["arrays"]  # type: ignore[no-any-return]

    def graph(self) -> bytes:
        entry = self.manifest["graph"]
        data = bytes(self.source.read(entry["offset"], entry["length"]))
        _verify(data, entry, "the object graph")
        if "codec" in entry:
            return bytes(_decompressed(entry, data, entry["size"], "the object graph"))
        return data

    def pack(self, verify: bool = True) -> memoryview:
        """The pack's bytes (v2), read once; checked unless ``verify`` is False and the
        pack is stored uncompressed in a buffer (a memory map: then nothing is read)."""
        entry = self.manifest["pack"]
        if self._pack is not None and (self._pack_verified or not verify):
            return self._pack
        view = self.source.read(entry["offset"], entry["length"])
        if "codec" in entry:
            _verify(view, entry, "the pack")
            end = max((r["offset"] + r["length"] for r in self.arrays if "packed" in r), default=0)
            view = _decompressed(entry, view, end, "the pack")
            verify = True
        elif verify:
            _verify(view, entry, "the pack")
        self._pack, self._pack_verified = view, verify
        return view

    def packed_array(self, index: int, dtype: np.dtype[Any]) -> HostArray:
        """Packed array ``index`` as a numpy array of ``dtype``, a view of one writable
        copy of the pack made (and verified) for the whole container.

        Per array this is one numpy call, where an empty array, a byte view of it and a
        copy into that view cost several µs each in Python calls (a forest has thousands
        of small packed arrays). The checks still hold: the pack's checksum is verified
        when it is first read, and the manifest validation proved ``length`` equals the
        shape times the itemsize and the offsets lie inside the pack. Arrays built this
        way do not own their memory (the copy does); each sees only its own bytes.
        """
        entry = self.arrays[index]
        copy = self._pack_copy
        if copy is None:
            # a numpy copy: numpy's own alignment, as the one array per entry had
            copy = self._pack_copy = np.frombuffer(self.pack(), np.uint8).copy()
        shape = tuple(entry["shape"])
        return np.ndarray(shape, dtype, buffer=copy, offset=entry["offset"], order=entry["order"])

    def _packed(self, entry: ArrayEntry, verify: bool = True) -> memoryview:
        return self.pack(verify)[entry["offset"] : entry["offset"] + entry["length"]]

    def worker(self) -> Worker:
        """A worker for overlapped reads of this container (close it when done)."""
        return Worker(enabled=self.source.overlaps)

    def read_array_into(self, index: int, out: memoryview, worker: Worker | None = None) -> None:
        """Read array ``index``'s bytes into ``out`` and verify its checksum."""
        entry = self.arrays[index]
        if out.nbytes != entry["length"]:
            stored = entry["length"]
            raise FormatError(f"array {index}: {stored} bytes stored, {out.nbytes} expected")
        if "packed" in entry:
            out.cast("B")[:] = self._packed(entry)
            return
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
        if "packed" in entry:
            packed = self._packed(entry)

            def from_pack(offset: int, out: memoryview) -> None:
                out.cast("B")[:] = packed[offset : offset + out.nbytes]

            read_staged(from_pack, 0, entry["length"], buffers, consume, wait, Worker(False))
            return
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
        if "packed" in entry:
            return self._packed(entry, verify)
        view = self.source.read(entry["offset"], entry["length"])
        if verify:
            _verify(view, entry, f"array {index}")
        return view

    def check_padding(self) -> None:
        """Every byte between sections must be zero (cheap: at most 63 bytes each)."""
        ends = [(HEADER.size, self.manifest["graph"]["offset"])]
        entries = [self.manifest["graph"], *self.arrays]
        if self.version >= 2:
            sections = [self.manifest["graph"], self.manifest.get("pack")]
            entries = [e for e in sections if e is not None]
            entries += [e for e in self.arrays if "packed" not in e]
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
        self._entry: ArrayEntry | None = entry
        self._what = f"array {index}"
        self._hasher = xxhash.xxh3_64()
        if "packed" in entry:  # verified with the pack: one piece, nothing left to check
            self._pieces: Iterator[memoryview] = iter([container.array_view(index)])
            self._entry = None
            return
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
        if self._entry is not None:
            _check_digest(self._hasher.intdigest(), self._entry, self._what)


def _decompressed(
    entry: dict[str, Any], stored: bytes | memoryview, size: int, what: str
) -> memoryview:
    """A compressed section's bytes (its stored bytes already verified), exactly
    ``size`` of them."""
    from ._codecs import decompress_into

    out = bytearray(size)
    try:
        decompress_into(entry["codec"], stored, memoryview(out))
    except IntegrityError as exc:
        raise IntegrityError(f"{what}: {exc}") from exc
    return memoryview(out)


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
