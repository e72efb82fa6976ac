"""Format versions and the fixed framing every version shares: header, trailer, alignment.

Place in the data flow: the lowest layer of the container. :mod:`devpersist._writer`
frames what it writes with these, :mod:`devpersist._format` checks them first when it
opens a file, and :mod:`devpersist._manifest` validates the manifest between them.

Versions (docs/format.md specifies each byte by byte):

- **1**: header, graph, one aligned blob per array, manifest with one JSON object per
  array (``"arrays": [{...}, ...]``), trailer.
- **2** (written by default): the arrays table is columnar (one JSON list per field),
  arrays of at most ``PACK_MAX_BYTES`` are packed into one region with one checksum,
  and with ``compress=`` the graph and the pack are compressed too.

How to make format version N + 1 (the procedure docs/format.md "Changing the format"
details):

1. Raise ``FORMAT_VERSION`` below and add N + 1 to ``READABLE``; the writer writes the
   newest version only (``tests`` may ask :func:`devpersist._writer.write_container`
   for an older one to pin an old reader).
2. Keep every older reader: :class:`devpersist._format.Container` dispatches on the
   header's version; never change what an older version's bytes mean. The magic, the
   version field (bytes 8-11) and the trailer stay where they are in every version.
3. Run ``python tests/data/make_golden.py`` to add ``vN+1_*`` golden files; never
   regenerate, edit or remove older ones.
4. Specify the new version in docs/format.md (a section of differences, its worked
   example and exact-bytes tests written independently of the writer).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._exceptions import (
    IntegrityError,
    NotDevpersistError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
)
from ._sniff import MAGIC as MAGIC
from ._sniff import sniff

END_MAGIC = b"DVP1END\n"
#: The version the writer writes.
FORMAT_VERSION = 2
#: The versions the reader reads.
READABLE = (1, 2)
ALIGNMENT = 64
#: Alignment of arrays inside the pack (v2): the same as the file's, so that a packed
#: array of an uncompressed pack can be memory-mapped in place like any other.
PACK_ALIGNMENT = ALIGNMENT
#: v2: arrays of at most this many bytes (stored, uncompressed) go into the pack. Below
#: it one copy into the pack costs less than an array's own blob (padding, checksum,
#: manifest row, one read); measured on RandomForest/HistGradientBoosting (docs/format.md).
PACK_MAX_BYTES = 64 * 2**10
#: v2: the pack stops growing at this size (later small arrays get their own blobs), so
#: that saving holds at most this much host memory for the pack.
PACK_MAX_TOTAL = 64 * 2**20
HEADER = struct.Struct("<8sII")
TRAILER = struct.Struct("<QQQII8s")
MAX_MANIFEST_BYTES = 64 * 2**20
CHECKSUM_PREFIX = "xxh3_64:"


def align(n: int, to: int = ALIGNMENT) -> int:
    """The smallest multiple of ``to`` (default ``ALIGNMENT``) that is >= ``n``."""
    return -(-n // to) * to


def checksum_text(digest: int) -> str:
    """A digest as the manifest writes it: ``xxh3_64:`` and 16 lowercase hex digits."""
    return f"{CHECKSUM_PREFIX}{digest:016x}"


@dataclass(frozen=True)
class Trailer:
    """The trailer's fields, checked against the header and the container's size."""

    manifest_offset: int
    manifest_length: int
    manifest_checksum: int
    version: int


def parse_header(head: bytes) -> int:
    """Check the 16-byte header; return the format version."""
    if len(head) < HEADER.size or head[:8] != MAGIC:
        raise NotDevpersistError(f"not a devpersist file: {sniff(bytes(head[:16]))}")
    _, version, flags = HEADER.unpack(head[: HEADER.size])
    check_version(version)
    if flags != 0:
        raise IntegrityError(f"header flags are {flags:#x}; format {version} defines none")
    return int(version)


def check_version(version: int) -> None:
    """A version this reader reads, or the error that says what to do."""
    if version > FORMAT_VERSION:
        from ._version import __version__

        raise UnsupportedFormatVersionError(
            f"the file is format version {version}; devpersist {__version__} reads "
            f"format version {FORMAT_VERSION} and older: upgrade devpersist to load it"
        )
    if version not in READABLE:
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
