"""Writing a container: header, graph, pack, blobs, manifest, trailer, streamed in order.

Place in the data flow: the save orchestration (:mod:`devpersist._save`) pickles the
graph and describes each array as a :class:`BlobSource` whose bytes are produced lazily;
:func:`write_container` streams them to the target, checksumming as it writes, so the
target never needs to seek and at most one large array's host copy exists at a time.
The manifest goes last because offsets, lengths and checksums are known only once
their bytes are written. Version 2 (the default) first copies the arrays of at most
``PACK_MAX_BYTES`` into one pack (one checksum, one read on load); see docs/format.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import xxhash

from ._columns import encode_columns
from ._exceptions import FormatError
from ._pipeline import Worker, write_hashed
from ._protocol import (
    ALIGNMENT,
    END_MAGIC,
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    PACK_ALIGNMENT,
    PACK_MAX_BYTES,
    PACK_MAX_TOTAL,
    TRAILER,
    align,
    checksum_text,
)

#: One zero buffer for all padding (never more than ALIGNMENT - 1 bytes are needed).
_ZEROS = memoryview(bytes(ALIGNMENT))
#: v2: the graph and the pack are compressed (with ``compress=``) from this size on
#: (below it a compressor's framing eats most of what it saves).
MIN_SECTION_COMPRESS = 512


@dataclass
class BlobSource:
    """One array's bytes as the writer streams them: chunks, in storage order.

    ``meta`` is the array's manifest row without its place (offset, length, checksum);
    ``nbytes`` is -1 when unknown in advance (compressed on the fly).
    """

    meta: dict[str, Any]
    nbytes: int
    chunks: Iterable[memoryview | bytes]


@dataclass(frozen=True)
class Compression:
    """How version 2 compresses its graph and pack: the codec's name for the manifest,
    and a function from chunks of input to chunks of compressed output."""

    codec: str
    compress: Callable[[Iterable[memoryview | bytes]], Iterator[bytes]]


class _CountingWriter:
    """Write to ``f`` and count bytes; offsets in the file are relative to its start."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.pos = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
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
    *,
    version: int = FORMAT_VERSION,
    compression: Compression | None = None,
) -> int:
    """Stream a complete container to ``f``; return the number of bytes written.

    ``blobs`` is consumed lazily: each chunk is checksummed and written (overlapped, for
    a large one) before the next is asked for, so the producer may reuse its memory.
    ``version=1`` writes the previous format (for tests of its reader); ``compression``
    applies to version 2's graph and pack (arrays carry their own codec in ``meta``).
    """
    out = _CountingWriter(f)
    with Worker() as worker:
        if version == 1:
            return _write_v1(out, graph, blobs, metadata, worker)
        if version != 2:
            raise ValueError(f"cannot write format version {version}")
        return _write_v2(out, graph, list(blobs), metadata, worker, compression)


def _write_blob(
    out: _CountingWriter, blob: BlobSource, index: int, worker: Worker
) -> dict[str, Any]:
    offset, length, checksum = _write_stream(out, blob, index, worker)
    return {**blob.meta, "offset": offset, "length": length, "checksum": checksum}


def _write_stream(
    out: _CountingWriter, blob: BlobSource, index: int, worker: Worker
) -> tuple[int, int, str]:
    """Write one array's bytes, aligned; its offset, length and checksum."""
    offset = out.pad()
    hasher = xxhash.xxh3_64()
    written = 0
    for chunk in blob.chunks:
        written += write_hashed(out.write, chunk, hasher, worker)
    if blob.nbytes >= 0 and written != blob.nbytes:
        raise FormatError(f"array {index} produced {written} bytes, expected {blob.nbytes}")
    return offset, written, checksum_text(hasher.intdigest())


#: One encoder for every manifest (``json.dumps`` with options builds one per call).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _finish(out: _CountingWriter, manifest: dict[str, Any], version: int) -> int:
    encoded = _JSON.encode(manifest).encode("utf-8")
    manifest_offset = out.pad()
    out.write(encoded)
    digest = xxhash.xxh3_64_intdigest(encoded)
    out.write(TRAILER.pack(manifest_offset, len(encoded), digest, version, 0, END_MAGIC))
    return out.pos


def _write_v1(
    out: _CountingWriter,
    graph: bytes,
    blobs: Iterable[BlobSource],
    metadata: dict[str, Any],
    worker: Worker,
) -> int:
    out.write(HEADER.pack(MAGIC, 1, 0))
    graph_offset = out.pad()
    out.write(graph)
    arrays = [_write_blob(out, blob, i, worker) for i, blob in enumerate(blobs)]
    manifest = {
        "format_version": 1,
        "alignment": ALIGNMENT,
        "graph": {
            "offset": graph_offset,
            "length": len(graph),
            "checksum": checksum_text(xxhash.xxh3_64_intdigest(graph)),
        },
        "arrays": arrays,
        **metadata,
    }
    return _finish(out, manifest, 1)


def packable(blob: BlobSource) -> bool:
    """Does version 2 put this array into the pack?"""
    return 0 <= blob.nbytes <= PACK_MAX_BYTES and "codec" not in blob.meta


def _section(
    out: _CountingWriter, data: bytes | bytearray, compression: Compression | None, sized: bool
) -> dict[str, Any]:
    """Write the graph or the pack (compressed when asked and large enough)."""
    offset = out.pad()
    entry: dict[str, Any] = {}
    stored: bytes | bytearray
    if compression is not None and len(data) >= MIN_SECTION_COMPRESS:
        stored = b"".join(compression.compress([memoryview(data)]))
        entry = {"codec": compression.codec, **({"size": len(data)} if sized else {})}
    else:
        stored = data
    out.write(stored)
    checksum = checksum_text(xxhash.xxh3_64_intdigest(stored))
    return {"offset": offset, "length": len(stored), "checksum": checksum, **entry}


def _write_v2(
    out: _CountingWriter,
    graph: bytes,
    blobs: list[BlobSource],
    metadata: dict[str, Any],
    worker: Worker,
    compression: Compression | None,
) -> int:
    out.write(HEADER.pack(MAGIC, 2, 0))
    manifest: dict[str, Any] = {"format_version": 2, "alignment": ALIGNMENT}
    manifest["graph"] = _section(out, graph, compression, sized=True)
    n = len(blobs)
    offsets: list[int] = [0] * n
    lengths: list[int] = [0] * n
    checksums: list[str | None] = [None] * n
    inside = [False] * n
    size = 0
    for i, blob in enumerate(blobs):  # in index order, until the pack is full
        if packable(blob) and align(size, PACK_ALIGNMENT) + blob.nbytes <= PACK_MAX_TOTAL:
            inside[i] = True
            size = align(size, PACK_ALIGNMENT) + blob.nbytes
    pack = bytearray(size)  # zeros: the padding between arrays is already there
    view = memoryview(pack)
    end = 0
    for i, blob in enumerate(blobs):
        if not inside[i]:
            continue
        start = pos = align(end, PACK_ALIGNMENT)
        for chunk in blob.chunks:
            piece = memoryview(chunk).cast("B")
            if pos + piece.nbytes > start + blob.nbytes:
                raise FormatError(f"array {i} produced more than the {blob.nbytes} bytes expected")
            view[pos : pos + piece.nbytes] = piece
            pos += piece.nbytes
        if pos - start != blob.nbytes:
            raise FormatError(f"array {i} produced {pos - start} bytes, expected {blob.nbytes}")
        end = pos
        offsets[i], lengths[i] = start, blob.nbytes
    del view
    if any(inside):
        manifest["pack"] = _section(out, pack, compression, sized=False)
    del pack
    for i, blob in enumerate(blobs):
        if not inside[i]:
            offsets[i], lengths[i], checksums[i] = _write_stream(out, blob, i, worker)
    manifest["arrays"] = encode_columns([b.meta for b in blobs], offsets, lengths, checksums)
    manifest.update(metadata)
    return _finish(out, manifest, 2)
