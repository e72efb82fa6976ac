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
import io
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ._exceptions import IntegrityError, MissingLibraryError

MIN_COMPRESS_BYTES = 4096
CODECS = {"zstd": "zstandard", "lz4": "lz4", "zlib": None, "lzma": None}
DEFAULT_LEVEL = {"zstd": 3, "lz4": 0, "zlib": 6, "lzma": 6}
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
    return codec, DEFAULT_LEVEL[codec] if level is None else int(level)


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


def decompress_into(codec: str, data: memoryview | bytes, out: memoryview) -> None:
    """Decompress ``data`` into ``out``, which must come out exactly full.

    Output is pulled in bounded reads, so a bomb never makes more than ``out.nbytes``
    plus one byte of output before it is rejected.
    """
    mod = _module(codec)
    source = io.BytesIO(data)
    try:
        if codec == "zstd":
            reader: Any = mod.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        elif codec == "lz4":
            reader = mod.LZ4FrameFile(source, mode="rb")
        elif codec == "lzma":
            reader = mod.LZMAFile(source, mode="rb")
        else:
            reader = _ZlibReader(bytes(data))
        produced = _drain(reader.read, out.cast("B"))
        extra = reader.read(1)
    except IntegrityError:
        raise
    except Exception as exc:
        raise IntegrityError(f"{codec} data does not decompress: {exc}") from exc
    if produced != out.nbytes or extra:
        raise IntegrityError(
            f"{codec} data decompresses to a different size than the {out.nbytes} bytes declared"
        )


_STEP = 1 << 22


def _drain(read: Any, target: memoryview) -> int:
    produced = 0
    while produced < target.nbytes:
        piece = read(min(_STEP, target.nbytes - produced))
        if not piece:
            break
        target[produced : produced + len(piece)] = piece
        produced += len(piece)
    return produced


class _ZlibReader:
    def __init__(self, data: bytes) -> None:
        self._dec = zlib.decompressobj()
        self._tail = data

    def read(self, n: int) -> bytes:
        if self._dec.eof:
            return b""
        out = self._dec.decompress(self._tail, n)
        self._tail = self._dec.unconsumed_tail
        return out
