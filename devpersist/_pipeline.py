"""Overlapped, chunked movement of large arrays between a file and memory.

Reading and writing a file release the GIL, and so does xxhash's checksumming (4.x, at
any size); a device copy runs on the device's copy engine once issued. So a large
array can move in chunks while a worker thread reads the next chunk (or writes this
one) and the calling thread checksums this chunk and issues its device copy:

- **save**: the writer hands each chunk to the worker and hashes it meanwhile; the
  producer of a device array has already started copying the next chunk into its other
  staging buffer (see ``arrays/_torch.py``);
- **load to host memory**: the worker reads chunk i+1 straight into the destination while
  chunk i is hashed;
- **load to a device**: the worker reads chunk i+1 into one staging buffer while chunk i,
  in the other, is hashed and copied up; a buffer is refilled only once its copy is done.

The overlap is used only where it pays (:func:`overlap_pays`): a worker that wants a core
the process does not have, or a hand-off per small chunk, costs more than the checksum
it hides. Otherwise bytes move in :data:`SERIAL_CHUNK` pieces, each checksummed right
after it is read (or just before it is written), while it is still in the CPU's cache:
hashing from cache runs at several times the speed of hashing from memory, so the
serial path pays little for giving up the overlap (measurements: ``docs/performance.md``
and ``benchmarks/bench_overlap.py``).

One more trap: the kernel's copy from a file runs at a third of its speed when the
destination lies a few bytes after the file position within 4 KiB (see
:data:`SHORT_DISTANCE`). Such reads go through a small bounce buffer placed like the
file position, then ``memmove`` into place.

Host memory is bounded by the staging buffers, whatever the array's size.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from typing import Any, TypeVar

import xxhash

_T = TypeVar("_T")

#: Arrays (and chunks) smaller than this are moved without the worker thread.
PIPELINE_BYTES = 8 * 2**20
#: The size of one pipelined read.
READ_CHUNK = 16 * 2**20
#: The piece size of serial moves: read (or hashed before it is written) and hashed
#: while in the CPU's cache (a core's L2 is 512 KiB to 2 MiB on current x86 and Arm).
SERIAL_CHUNK = 2**20
#: The overlap needs a core for the worker besides the caller's.
MIN_CORES = 2
#: A file read copies at a third of its speed when the destination lies just after the
#: file position, modulo 4 KiB: the kernel's ``rep movsb`` then stalls on 4K aliasing
#: (measured on AMD EPYC: 0.7 against 2.2 GB/s at 8 to 24 bytes, full speed from 32).
#: glibc's memmove avoids ``rep movsb`` for distances of 1 to 63 bytes; the kernel's
#: copy does not. A large numpy array starts 16 bytes into a page, so one stored at a
#: page-aligned offset hits it. Reads at 1 to 63 bytes (as glibc) go through a bounce
#: buffer placed like the file position.
ALIAS_SPAN = 4096
SHORT_DISTANCE = 64
#: Reads smaller than this are not worth the address check.
BOUNCE_MIN_BYTES = 256 * 2**10

_local = threading.local()  # one bounce buffer per thread that reads


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def idle_cores() -> float:
    """Usable cores less the system's 1-minute load average (the runnable tasks)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available: assume an idle machine
        load = 0.0
    return usable_cores() - load


def overlap_pays(nbytes: int, worker: Worker) -> bool:
    """Whether moving ``nbytes`` through ``worker`` beats reading and hashing in turn.

    Only for a worker that may run (a file, not a buffer), a move of
    :data:`PIPELINE_BYTES` or more, and a process with :data:`MIN_CORES` usable cores
    of which one, on average, is idle: measured, the overlap wins by a quarter to a
    third when a core is free, and draws level or loses (saves: 14% slower) when other
    work keeps every core busy.
    """
    return (
        worker.enabled
        and nbytes >= PIPELINE_BYTES
        and usable_cores() >= MIN_CORES
        and idle_cores() >= 1
    )


class Worker:
    """One background thread for file reads and writes, started on first use.

    With ``enabled=False`` (a source that holds the GIL while copying, such as a
    buffer), work runs inline and nothing overlaps.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        if not self.enabled:
            done: Future[_T] = Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="devpersist-io")
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: A worker that runs everything in the calling thread, in turn.
INLINE = Worker(enabled=False)


def _address(view: memoryview) -> int:
    """The address of a writable buffer's first byte."""
    anchor = ctypes.c_char.from_buffer(view)  # holds an export until it is freed
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor


def short_distance(out: memoryview, offset: int) -> bool:
    """Whether reading the file at ``offset`` into ``out`` is a slow short-distance copy
    (``out`` 1 to ``SHORT_DISTANCE - 1`` bytes after ``offset``, modulo ``ALIAS_SPAN``)."""
    if out.readonly or not out.c_contiguous or not out.nbytes:
        return False
    return 0 < (_address(out) - offset) % ALIAS_SPAN < SHORT_DISTANCE


def _read_bounced(readinto: Callable[[int, memoryview], None], offset: int, out: memoryview) -> int:
    """:func:`read_hashed` through a bounce buffer that starts where the file position
    does within its 4 KiB, so that the kernel's copy runs at full speed; each piece is
    hashed in cache, then copied to ``out`` by ``memmove``."""
    total = out.nbytes
    size = min(SERIAL_CHUNK, total)
    buf = getattr(_local, "bounce", None)
    if buf is None or len(buf) < size + ALIAS_SPAN:
        buf = _local.bounce = bytearray(max(size, SERIAL_CHUNK) + ALIAS_SPAN)
    view = memoryview(buf)
    base = _address(view)
    dst = _address(out)
    hasher = xxhash.xxh3_64()
    for pos in range(0, total, size):
        n = min(size, total - pos)
        start = (offset + pos - base) % ALIAS_SPAN
        piece = view[start : start + n]
        readinto(offset + pos, piece)
        hasher.update(piece)
        ctypes.memmove(dst + pos, base + start, n)
    return int(hasher.intdigest())


def write_hashed(
    write: Callable[[memoryview], object],
    chunk: bytes | memoryview,
    hasher: xxhash.xxh3_64,
    worker: Worker,
) -> int:
    """Write ``chunk`` and feed it to ``hasher``, overlapped where that pays; its size.

    Returns once both are done, so the caller may then reuse the chunk's memory.
    """
    view = memoryview(chunk)
    size = view.nbytes
    if not overlap_pays(size, worker):
        if size > SERIAL_CHUNK and view.c_contiguous:
            # each piece hashed first, so that the write copies it out of the cache
            flat = view.cast("B")
            for start in range(0, size, SERIAL_CHUNK):
                piece = flat[start : start + SERIAL_CHUNK]
                hasher.update(piece)
                write(piece)
        else:
            hasher.update(view)
            write(view)
        return size
    pending = worker.submit(write, view)
    try:
        hasher.update(view)
    finally:
        pending.result()  # never leave the worker writing memory the caller may reuse
    return size


def read_hashed(
    readinto: Callable[[int, memoryview], None],
    offset: int,
    out: memoryview,
    worker: Worker,
    chunk: int = READ_CHUNK,
) -> int:
    """Fill ``out`` with the bytes at ``offset``; the xxh3-64 digest of what was read.

    Overlapped (the worker reads ``chunk`` bytes ahead while this thread hashes) where
    :func:`overlap_pays`; otherwise read and hashed in turn, :data:`SERIAL_CHUNK` at a time.
    """
    out = out.cast("B") if out.format != "B" or out.ndim != 1 else out
    total = out.nbytes
    if worker.enabled and total >= BOUNCE_MIN_BYTES and short_distance(out, offset):
        return _read_bounced(readinto, offset, out)  # (files only: a buffer copies fast)
    if not overlap_pays(total, worker):
        if total <= SERIAL_CHUNK:
            readinto(offset, out)
            return int(xxhash.xxh3_64_intdigest(out))
        hasher = xxhash.xxh3_64()
        for start in range(0, total, SERIAL_CHUNK):
            piece = out[start : start + SERIAL_CHUNK]
            readinto(offset + start, piece)
            hasher.update(piece)  # still in cache: several times faster than from memory
        return int(hasher.intdigest())
    hasher = xxhash.xxh3_64()
    readinto(offset, out[: min(chunk, total)])
    for start in range(0, total, chunk):
        end = min(start + chunk, total)
        pending = None
        if end < total:
            stop = min(end + chunk, total)
            pending = worker.submit(readinto, offset + end, out[end:stop])
        try:
            hasher.update(out[start:end])
        finally:
            if pending is not None:
                pending.result()
    return int(hasher.intdigest())


def staged_reads(
    readinto: Callable[[int, memoryview], None],
    offset: int,
    length: int,
    buffers: Sequence[memoryview],
    worker: Worker,
    hasher: xxhash.xxh3_64,
    before_refill: Callable[[int], None] | None = None,
) -> Generator[tuple[int, int, memoryview], None, None]:
    """Read ``length`` bytes at ``offset`` into ``buffers`` in turn, chunk by chunk.

    Yields ``(start, slot, view)``: ``view`` is ``buffers[slot]`` holding the bytes
    ``start:start + view.nbytes``, already fed to ``hasher``, and valid until the next
    chunk is asked for. The worker reads the next chunk while the caller holds this one;
    ``before_refill(slot)`` is called first, so a caller whose use of a buffer outlives
    its turn (an asynchronous device copy) can wait for it. Where the overlap does not
    pay (:func:`overlap_pays`), the reads run in this thread, in the same order. Close
    the generator (or exhaust it) before giving the buffers back.
    """
    slots = len(buffers)
    size = buffers[0].nbytes if buffers else 0
    count = -(-length // size) if size else 0
    if size < 1 or (count > 1 and slots < 2) or any(b.nbytes != size for b in buffers):
        raise ValueError("staged reads need two or more non-empty buffers of one size")
    if not overlap_pays(length, worker):
        worker = INLINE  # each chunk read in turn, in this thread

    def fill(index: int) -> memoryview:
        start = index * size
        view = buffers[index % slots][: min(size, length - start)]
        readinto(offset + start, view)
        return view

    pending = worker.submit(fill, 0) if count else None
    try:
        for index in range(count):
            assert pending is not None
            view = pending.result()
            pending = None
            if index + 1 < count:
                if before_refill is not None:
                    before_refill((index + 1) % slots)
                pending = worker.submit(fill, index + 1)
            hasher.update(view)
            yield index * size, index % slots, view
    finally:
        if pending is not None:  # never leave a read running into memory given back
            wait([pending])


def read_staged(
    readinto: Callable[[int, memoryview], None],
    offset: int,
    length: int,
    buffers: Sequence[memoryview],
    consume: Callable[[int, int, int], Any],
    wait_for: Callable[[Any], None],
    worker: Worker,
) -> int:
    """Stream ``length`` bytes at ``offset`` through the staging ``buffers``, in order.

    For each chunk, ``consume(start, slot, size)`` is called once ``buffers[slot][:size]``
    holds the bytes ``start:start + size``; it returns a token (a device event, say) or
    None. ``wait_for(token)`` must return only when the chunk's memory may be
    overwritten: the buffer is refilled after that, and every token is waited on before
    returning. Returns the xxh3-64 digest of the bytes read.
    """
    if len(buffers) < 2:
        raise ValueError("staged reads need two or more non-empty buffers of one size")
    hasher = xxhash.xxh3_64()
    tokens: list[Any] = [None] * len(buffers)

    def release(slot: int) -> None:
        if tokens[slot] is not None:
            wait_for(tokens[slot])
            tokens[slot] = None

    chunks = staged_reads(readinto, offset, length, buffers, worker, hasher, release)
    try:
        with closing(chunks):
            for start, slot, view in chunks:
                tokens[slot] = consume(start, slot, view.nbytes)
    finally:
        for slot in range(len(tokens)):
            release(slot)
    return int(hasher.intdigest())
