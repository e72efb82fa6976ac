"""Per-array transforms between an array's bytes and the bytes on disk.

Two independent options of ``dump``:

- ``precision="float16" | "bfloat16"``: floating arrays are stored at half precision
  (like Burn's half-precision recorder) and cast back to their dtype on load, unless
  ``load(..., restore_precision=False)``. Recorded per array as ``meta.cast`` (the dtype
  to restore) and ``meta.precision``.
- ``compress=`` (see :func:`parse_compress`: joblib's conventions): arrays of at least
  :data:`MIN_COMPRESS_BYTES` are compressed; ``length`` and the checksum then describe the
  compressed bytes, so tampering is caught before a decompressor sees them, and the
  decompressed size must equal ``shape × itemsize`` exactly (no decompression bombs:
  decompressors are never asked for more than that).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._exceptions import IntegrityError, MissingLibraryError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from ._format import StoredBlob
    from .arrays import ArrayEntry

MIN_COMPRESS_BYTES = 4096
CODECS = {"zstd": "zstandard", "lz4": "lz4", "zlib": None, "lzma": None}
DEFAULT_LEVEL = {"zstd": 3, "lz4": 0, "zlib": 6, "lzma": 6}
# What each library accepts (zstd and lz4 take negative "fast" levels); checked up front
# so that a bad level fails at the call, not deep inside a compressor with its message.
PRECISIONS = ("float16", "bfloat16")


#: joblib's names for our codecs (the same algorithms, framed per array).
ALIASES = {"gzip": "zlib", "xz": "lzma"}
#: Levels each codec accepts.
LEVELS = {
    "zstd": range(-131072, 23),
    "lz4": range(0, 17),
    "zlib": range(0, 10),
    "lzma": range(0, 10),
}


class CodecFallbackWarning(UserWarning):
    """``compress=True`` chose zlib because the default codec's library is missing."""


class NotMappedWarning(UserWarning):
    """``mmap=True`` could not map some or all arrays: they were read into memory."""


def parse_compress(compress: Any) -> tuple[str, int] | None:
    """``(codec, level)`` or None, following joblib's conventions.

    - None, False, 0: no compression;
    - an int 1-9: zlib at that level (joblib's default codec);
    - True: zstd at level 3, or zlib at level 3 with a :class:`CodecFallbackWarning`
      when zstandard is not installed (the codec was not named, so any will do);
    - a codec name (``"zstd"``, ``"lz4"``, ``"zlib"``, ``"lzma"``, or joblib's ``"gzip"``
      and ``"xz"`` for the same algorithms), optionally ``"name:level"``;
    - ``(name, level)``.

    A named codec whose library is missing raises :class:`MissingLibraryError`.
    """
    if compress is None or compress is False:
        return None
    if compress is True:
        try:
            _module("zstd")
        except MissingLibraryError:
            import warnings

            warnings.warn(
                "compress=True: zstandard is not installed, so arrays are compressed with "
                "zlib (pip install zstandard for faster, smaller files)",
                CodecFallbackWarning,
                stacklevel=4,
            )
            return "zlib", 3
        return "zstd", DEFAULT_LEVEL["zstd"]
    if isinstance(compress, int) and not isinstance(compress, bool):
        if compress not in range(10):
            raise ValueError(f"compress as an int is a zlib level from 0 to 9, not {compress}")
        return ("zlib", compress) if compress else None
    if isinstance(compress, str):
        codec, _, text = compress.partition(":")
        try:
            level = int(text) if text else None
        except ValueError:
            raise ValueError(f"compress={compress!r}: the level after ':' must be an int") from None
    elif isinstance(compress, (tuple, list)) and len(compress) == 2:
        codec, level = compress
        if not isinstance(level, int) or isinstance(level, bool):
            raise ValueError(f"compress={compress!r}: the level must be an int")
    else:
        raise ValueError(
            "compress must be None, a bool, a zlib level 0-9, a codec name or "
            f"(codec, level), not {compress!r}"
        )
    if not isinstance(codec, str) or ALIASES.get(codec, codec) not in CODECS:
        hint = " (bz2 is not one of devpersist's codecs)" if codec == "bz2" else ""
        raise ValueError(
            f"unknown codec {codec!r}; choose from {sorted([*CODECS, *ALIASES])}{hint}"
        )
    codec = ALIASES.get(codec, codec)
    if level is not None and level not in LEVELS[codec]:
        span = LEVELS[codec]
        raise ValueError(f"{codec} level {level} is outside {span.start}..{span.stop - 1}")
    _module(codec)
    return codec, DEFAULT_LEVEL[codec] if level is None else level


def warn_unmapped(file: Any, is_url: bool) -> bool:
    """For ``load(..., mmap=True)``: whether ``file`` can be mapped (a local path);
    warn, as joblib does, when it cannot and is read instead."""
    import os

    if isinstance(file, (str, os.PathLike)) and not is_url:
        return True
    import warnings

    what = "a URL" if is_url else f"a {type(file).__name__}"
    warnings.warn(
        f"mmap=True: the source is {what}, not a local file, so it is read into memory, not mapped",
        NotMappedWarning,
        stacklevel=3,
    )
    return False


def warn_decoded(arrays: list[ArrayEntry], pack_compressed: bool = False) -> None:
    """For ``load(..., mmap=True)``: warn that compressed and reduced-precision arrays
    are decompressed (or widened) into memory rather than mapped; with
    ``pack_compressed`` (format 2), so are the packed arrays."""
    decoded = [
        a
        for a in arrays
        if "codec" in a or "precision" in a.get("meta", {}) or (pack_compressed and a.get("packed"))
    ]
    if decoded:
        import warnings

        warnings.warn(
            f"mmap=True: {len(decoded)} of {len(arrays)} arrays are compressed or stored at "
            "reduced precision, so they are decoded into memory, not mapped",
            NotMappedWarning,
            stacklevel=4,
        )


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
    chunks: Iterable[memoryview], dtype: np.dtype, precision: str, clamp: bool = False
) -> Iterator[memoryview]:
    """Re-encode chunks of ``dtype`` values at ``precision`` (chunks hold whole values).

    With ``clamp``, finite values beyond the storage type's range are stored as its
    largest finite value of the same sign instead of as inf.
    """
    limit = _max_finite(precision)
    for chunk in chunks:
        values = np.frombuffer(chunk, dtype=dtype)
        if clamp:  # NaN and ±inf are kept: they were not finite to begin with
            values = np.where(np.isfinite(values), np.clip(values, -limit, limit), values)
        if precision == "float16":
            stored = values.astype("<f2")
        else:
            stored = to_bfloat16_bits(values).astype("<u2", copy=False)
        yield memoryview(stored.view(np.uint8))  # type: ignore[arg-type]  # numpy stubs


def precision_applies(dtype: np.dtype, precision: str | None) -> bool:
    return precision is not None and dtype.kind == "f" and dtype.itemsize > 2


#: The largest finite value and the machine epsilon of each storage type.
_RANGE = {"float16": (65504.0, 2.0**-10), "bfloat16": (float(np.float32(3.3895314e38)), 2.0**-7)}


def _max_finite(precision: str) -> float:
    return _RANGE[precision][0]


def _stored_values(values: np.ndarray, precision: str) -> np.ndarray:
    """``values`` as they come back from ``precision`` storage (float16 or float32)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if precision == "float16":
            return values.astype(np.float16)
        return from_bfloat16_bits(to_bfloat16_bits(values))


def check_precision(
    chunks: Iterable[memoryview], dtype: np.dtype, precision: str, where: str
) -> None:
    """Refuse an array that ``precision`` cannot hold, before anything is written.

    Refused, with :class:`~devpersist.PrecisionLossError` naming ``where``:

    - *overflow*: a finite value beyond the storage type's range (65504 for float16,
      about 3.4e38 for bfloat16), which would be stored as ``inf``;
    - *underflow that matters*: a finite non-zero value stored as 0 although its
      magnitude exceeds the storage type's epsilon times the array's largest magnitude,
      that is, a loss larger than the rounding already accepted for the array's largest
      value (float16 epsilon 2**-10, bfloat16 2**-7). Tiny values next to large ones are
      flushed to zero as half precision always does; an array of tiny values
      (a variance of 1e-9, say) is refused instead of becoming all zeros.

    NaN and infinite values are kept as they are.
    """
    limit, eps = _RANGE[precision]
    overflow, largest, lost = 0, 0.0, 0.0
    for chunk in chunks:
        everything = np.frombuffer(chunk, dtype=dtype)
        # a few temporaries per slice: bounded memory whatever the chunk's size
        for start in range(0, everything.size, _CHECK_SLICE):
            values = everything[start : start + _CHECK_SLICE]
            overflow, largest, lost = _check_slice(values, precision, overflow, largest, lost)
    from ._exceptions import PrecisionLossError

    hint = "save it at full precision, or pass clamp_precision=True to store it anyway"
    if overflow:
        raise PrecisionLossError(
            f"precision={precision!r} cannot hold {where}: {overflow} value(s) beyond "
            f"±{limit:.6g} would be stored as inf (largest magnitude {largest:.6g}); "
            f"{hint}, clamped to ±{limit:.6g}",
            where,
        )
    if lost and lost > eps * largest:
        raise PrecisionLossError(
            f"precision={precision!r} cannot hold {where}: non-zero values up to {lost:.6g} "
            f"would be stored as 0 (the array's largest magnitude is {largest:.6g}); "
            f"{hint}, as 0",
            where,
        )


_CHECK_SLICE = 1 << 21


def _check_slice(
    values: np.ndarray, precision: str, overflow: int, largest: float, lost: float
) -> tuple[int, float, float]:
    """Fold one slice into the running (overflow count, largest magnitude, largest
    magnitude that would be stored as 0)."""
    stored = _stored_values(values, precision)
    finite = np.isfinite(values)
    magnitude = np.abs(values, where=finite, out=np.zeros(values.shape, values.dtype))
    if magnitude.size:
        largest = max(largest, float(magnitude.max()))
    overflow += int(np.count_nonzero(finite & ~np.isfinite(stored)))
    flushed = (stored == 0) & (values != 0) & finite
    if flushed.any():
        lost = max(lost, float(magnitude[flushed].max()))
    return overflow, largest, lost


def stored_dtype(precision: str) -> np.dtype:
    return np.dtype("<f2") if precision == "float16" else np.dtype("<u2")


# --------------------------------------------------------------------------- reading


def decompress_stored(codec: str, blob: StoredBlob, out: memoryview) -> None:
    """Decompress a :class:`~devpersist._format.StoredBlob` into ``out`` as it is read,
    then check the blob's checksum. A corrupted blob is reported as such (a checksum
    mismatch) even when the decompressor is the first to notice something wrong."""
    try:
        decompress_into(codec, blob, out)
    except IntegrityError:
        blob.finish()  # raises the checksum mismatch if that is the cause
        raise
    blob.finish()


def decompress_into(
    codec: str, data: bytes | bytearray | memoryview | Iterable[Buffer], out: memoryview
) -> None:
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

    def __init__(self, pieces: Iterable[Buffer]) -> None:
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


def _zstd_into(mod: Any, pieces: Iterable[Buffer], target: memoryview) -> tuple[int, bool]:
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


def _feed_into(
    dec: Any, pieces: Iterable[Buffer], target: memoryview, ratio: int
) -> tuple[int, bool]:
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


def _pull_into(dec: Any, pieces: Iterable[Buffer], target: memoryview) -> tuple[int, bool]:
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
