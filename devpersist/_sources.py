"""Where a container's bytes come from: a buffer, a seekable file, or a stream.

Place in the data flow: the load orchestration (:mod:`devpersist._load`) opens the
user's target as a :class:`Source`; :class:`devpersist._format.Container` reads checked
byte ranges from it. A non-seekable stream (a pipe, a socket) has no size and no random
access: :func:`read_stream` reads exactly one container from it, stopping at the
container's own end (the trailer), so a second container written after it stays in the
stream for the next load.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from ._exceptions import IntegrityError
from ._protocol import ALIGNMENT, END_MAGIC, HEADER, MAGIC, TRAILER, check_version

if TYPE_CHECKING:
    from typing_extensions import Buffer


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
    """A container held in memory (bytes, a memory map): reads are views, no copies."""

    def __init__(self, buffer: Buffer) -> None:
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


def _read_exactly(f: Any, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = f.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_stream(f: Any) -> bytes:
    """The bytes of one container read from the stream ``f``, and not a byte more.

    The end of a container is known only from its trailer: 40 bytes ending with the end
    magic, whose manifest offset and length place the trailer exactly where it was
    found, and whose checksum matches the manifest's bytes. The stream is scanned for
    such a trailer through ``f.peek()`` (which shows buffered bytes without consuming
    them), and only bytes up to that end are consumed. A stream without ``peek`` is read
    to its end, as a stream of one container. The container is then checked in full by
    :class:`devpersist._format.Container`, like any other.
    """
    head = _read_exactly(f, HEADER.size)
    if len(head) < HEADER.size or head[:8] != MAGIC:
        return head  # not a container (or a cut one): Container.open says which
    check_version(int.from_bytes(head[8:12], "little"))
    peek = getattr(f, "peek", None)
    if peek is None:
        return head + bytes(f.read())
    data = bytearray(head)
    keep = len(END_MAGIC) - 1  # an end magic may straddle two windows
    while True:
        window = bytes(peek(1 << 16))
        if not window:  # end of the stream without a trailer: let the checks say so
            return bytes(data)
        scan = bytes(data[-keep:]) + window
        base = len(data) - keep  # stream position of scan[0]
        hit = scan.find(END_MAGIC)
        while hit >= 0:
            end = base + hit + len(END_MAGIC)  # the container's size if this is its trailer
            if end > len(data) and _is_end(data, window, end):
                data += f.read(end - len(data))
                return bytes(data)
            hit = scan.find(END_MAGIC, hit + 1)
        data += f.read(len(window))


def _is_end(data: bytearray, window: bytes, end: int) -> bool:
    """Would the container end at ``end`` (inside ``window``, which follows ``data``)?
    Its trailer's fields say so, and its manifest's checksum matches, so a chance end
    magic inside array bytes does not end it. Cheap checks first, no copy of ``data``."""
    if end < ALIGNMENT + TRAILER.size:
        return False

    def span(lo: int, hi: int) -> bytes:  # stream bytes [lo, hi) from data + window
        n = len(data)
        return bytes(data[lo : min(hi, n)]) + window[max(lo - n, 0) : max(hi - n, 0)]

    offset, length, digest, version, reserved, _ = TRAILER.unpack(span(end - TRAILER.size, end))
    if offset + length + TRAILER.size != end or offset % ALIGNMENT or reserved:
        return False
    if version != int.from_bytes(data[8:12], "little") or span(offset, offset + 2) != b'{"':
        return False
    import xxhash

    return bool(xxhash.xxh3_64_intdigest(span(offset, offset + length)) == digest)
