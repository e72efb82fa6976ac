"""Per-array transforms between an array's bytes and the bytes on disk.

Two independent options of ``dump``:

- ``precision="float16" | "bfloat16"``: floating arrays are stored at half precision
  (like Burn's half-precision recorder) and cast back to their dtype on load, unless
  ``load(..., restore_precision=False)``. Recorded per array as ``meta.cast`` (the dtype
  to restore) and ``meta.precision``.
- ``compress="zstd" | "lz4" | "zlib" | "lzma"`` (or ``(codec, level)``): arrays of at least
  :data:`MIN_COMPRESS_BYTES` are compressed; ``length`` and the checksum then describe the
  compressed bytes, so tampering is caught before a decompressor sees them, and the
  decompressed size must equal ``shape × itemsize`` exactly (no decompression bombs:
  decompressors are never asked for more than that).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ._exceptions import IntegrityError, MissingLibraryError

MIN_COMPRESS_BYTES = 4096
CODECS = {"zstd": "zstandard", "lz4": "lz4", "zlib": None, "lzma": None}
DEFAULT_LEVEL = {"zstd": 3, "lz4": 0, "zlib": 6, "lzma": 6}
# What each library accepts (zstd and lz4 take negative "fast" levels); checked up front
# so that a bad level fails at the call, not deep inside a compressor with its message.
LEVELS = {"zstd": (-(1 << 17), 22), "lz4": (-(1 << 17), 16), "zlib": (-1, 9), "lzma": (0, 9)}
PRECISIONS = ("float16", "bfloat16")


def parse_compress(compress: Any) -> tuple[str, int] | None:
    if compress is None or compress is False:
        return None
    if compress is True:
        compress = "zstd"
    if isinstance(compress, str):
        codec, level = compress, None
    elif isinstance(compress, tuple) and len(compress) == 2:
        codec, level = compress
    else:
        raise ValueError(f"compress must be a codec name or (codec, level), not {compress!r}")
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose from {sorted(CODECS)}")
    _module(codec)
    if level is None:
        return codec, DEFAULT_LEVEL[codec]
    low, high = LEVELS[codec]
    if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
        raise ValueError(f"{codec} compression level must be an integer in [{low}, {high}]")
    return codec, level


def _module(codec: str) -> Any:
    dist = CODECS[codec]
    name = {"zstd": "zstandard", "lz4": "lz4.frame", "zlib": "zlib", "lzma": "lzma"}[codec]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingLibraryError(
            f"the {codec} codec needs the {dist!r} package: pip install {dist} "
            "(or devpersist[compress])"
        ) from exc


# --------------------------------------------------------------------------- writing


#: Input handed to a compressor at a time (its output is held until written).
COMPRESS_PIECE = 4 * 2**20


def compress_chunks(
    chunks: Iterable[memoryview | bytes], codec: str, level: int
) -> Iterator[bytes]:
    mod = _module(codec)
    if codec == "zstd":
        comp = mod.ZstdCompressor(level=level, threads=-1).compressobj()
        flush = comp.flush
    elif codec == "lz4":
        comp = mod.LZ4FrameCompressor(compression_level=level)
        first = comp.begin()
        if first:
            yield first
        flush = comp.flush
    elif codec == "zlib":
        comp = mod.compressobj(level)
        flush = comp.flush
    else:
        comp = mod.LZMACompressor(preset=level)
        flush = comp.flush
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        # small pieces, so that the compressed output held at once stays small too
        for start in range(0, view.nbytes, COMPRESS_PIECE):
            out = comp.compress(view[start : start + COMPRESS_PIECE])
            if out:
                yield out
    tail = flush()
    if tail:
        yield tail


def to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32/float64 -> bfloat16 bit patterns (uint16), rounding to nearest even."""
    f32 = np.asarray(values, dtype=np.float32)
    bits = f32.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(f32)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def reduce_precision(
    chunks: Iterable[memoryview], dtype: np.dtype, precision: str
) -> Iterator[memoryview]:
    """Re-encode chunks of ``dtype`` values at ``precision`` (chunks hold whole values)."""
    for chunk in chunks:
        values = np.frombuffer(chunk, dtype=dtype)
        if precision == "float16":
            stored = values.astype("<f2")
        else:
            stored = to_bfloat16_bits(values).astype("<u2", copy=False)
        yield memoryview(stored.view(np.uint8))  # type: ignore[arg-type]  # numpy stubs


def precision_applies(dtype: np.dtype, precision: str | None) -> bool:
    return precision is not None and dtype.kind == "f" and dtype.itemsize > 2


def stored_dtype(precision: str) -> np.dtype:
    return np.dtype("<f2") if precision == "float16" else np.dtype("<u2")


# --------------------------------------------------------------------------- reading


def decompress_stored(codec: str, blob: Any, out: memoryview) -> None:
    """Decompress a :class:`~devpersist._format.StoredBlob` into ``out`` as it is read,
    then check the blob's checksum. A corrupted blob is reported as such (a checksum
    mismatch) even when the decompressor is the first to notice something wrong."""
    try:
        decompress_into(codec, blob, out)
    except IntegrityError:
        blob.finish()  # raises the checksum mismatch if that is the cause
        raise
    blob.finish()


def decompress_into(codec: str, data: Any, out: memoryview) -> None:
    """Decompress ``data`` (a buffer, or an iterable of buffers consumed in order) into
    ``out``, which must come out exactly full.

    Output is bounded as it is made, so a bomb never makes more than ``out.nbytes`` plus
    a few MiB before it is rejected: zstd decompresses straight into ``out``; zlib and
    lz4 are fed input in pieces small enough that even their best ratio (about 1032:1
    and 255:1) cannot overshoot by more than 4 MiB; lzma is asked for 4 MiB at a time.
    """
    mod = _module(codec)
    target = out.cast("B")
    pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        if codec == "zstd":
            produced, extra = _zstd_into(mod, pieces, target)
        elif codec == "lzma":
            produced, extra = _pull_into(mod.LZMADecompressor(), pieces, target)
        else:
            dec = mod.decompressobj() if codec == "zlib" else mod.LZ4FrameDecompressor()
            produced, extra = _feed_into(dec, pieces, target, _RATIO[codec])
    except IntegrityError:
        raise
    except Exception as exc:
        raise IntegrityError(f"{codec} data does not decompress: {exc}") from exc
    if produced != target.nbytes or extra:
        raise IntegrityError(
            f"{codec} data decompresses to a different size than the {out.nbytes} bytes declared"
        )


_STEP = 1 << 22
#: The most output one input byte can make (zlib: 1032; lz4: 255, plus framing slack).
_RATIO = {"zlib": 1040, "lz4": 256}


class _PieceFile:
    """A read-only file over an iterable of buffers (zstd's stream reader pulls)."""

    def __init__(self, pieces: Iterable[Any]) -> None:
        self._pieces = iter(pieces)
        self._current = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        while not self._current.nbytes:
            following = next(self._pieces, None)
            if following is None:
                return b""
            self._current = memoryview(following).cast("B")
        taken = self._current if n < 0 else self._current[:n]
        self._current = self._current[taken.nbytes :]
        return bytes(taken)  # a copy: the piece's memory is reused once consumed


def _zstd_into(mod: Any, pieces: Iterable[Any], target: memoryview) -> tuple[int, bool]:
    source = _PieceFile(pieces)
    reader = mod.ZstdDecompressor().stream_reader(
        source, read_size=1 << 20, read_across_frames=True
    )
    produced = 0
    while produced < target.nbytes:
        n = reader.readinto(target[produced : produced + _STEP])
        if not n:
            break
        produced += n
    return produced, bool(reader.read(1)) or bool(source.read(1))


def _feed_into(dec: Any, pieces: Iterable[Any], target: memoryview, ratio: int) -> tuple[int, bool]:
    """Feed the input to ``dec`` in bits sized so that even the codec's best ``ratio``
    cannot make more than what ``target`` still lacks (or 1 MiB); output beyond
    ``target`` stops it."""
    produced = 0
    for data in pieces:
        view = memoryview(data).cast("B")
        start = 0
        while start < view.nbytes:
            if dec.eof:
                return produced, True  # input after the end of the stream
            size = min(max((target.nbytes - produced) // ratio, 1 << 12), 1 << 20)
            chunk = dec.decompress(view[start : start + size])
            start += size
            end = produced + len(chunk)
            if end > target.nbytes:
                return end, False
            target[produced:end] = chunk
            produced = end
    return produced, bool(dec.unused_data) or not dec.eof


def _pull_into(dec: Any, pieces: Iterable[Any], target: memoryview) -> tuple[int, bool]:
    """Ask ``dec`` (which buffers unconsumed input) for bounded output at a time."""
    produced = 0
    for data in pieces:
        if dec.eof:
            return produced, True
        while True:
            chunk = dec.decompress(data, max_length=_STEP)
            data = b""
            end = produced + len(chunk)
            if end > target.nbytes:
                return end, False
            target[produced:end] = chunk
            produced = end
            if dec.eof or dec.needs_input:
                break
    return produced, bool(dec.unused_data) or not dec.eof
