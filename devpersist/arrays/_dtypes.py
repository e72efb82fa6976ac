"""The dtype table: the standard element types, and those numpy lacks (bfloat16, the
float8/6/4 families, sub-byte integers, complex32).

``STANDARD`` lists the element types every device library has, by numpy's kind-and-size
code and name (torch's names are the same); handlers declare theirs as a subset of it.

torch and JAX (through ``ml_dtypes``) have element types numpy does not. Their bytes are
stored as unsigned integers of the same size (``u1``, ``u2``, ``u4``) and the library's
name for the type is recorded in the manifest's ``meta["dtype"]``. Loading into the same
library views the bytes as that type again, bit for bit.

Converting to numpy (``namespace="numpy"``, or a fallback) needs the values, and must not
import the library that made them (it may not be installed): every conversion here is
pure numpy and exact. Each type widens to the smallest standard numpy dtype holding every
value: bfloat16 and the small floats become float32 (numpy has no bfloat16, and float16
cannot hold bfloat16's range), complex32 becomes complex64, sub-byte integers become
int8/uint8. ``float4_e2m1fn_x2`` (torch) packs two values per byte and has no numpy form.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._exceptions import DeviceError, FormatError

# Minifloats: name -> (exponent bits, mantissa bits, exponent bias, special values).
# Specials: "ieee" (all-ones exponent is inf / NaN), "fn" (no inf, all-ones is NaN),
# "fnuz" (no inf, no -0, the -0 pattern is NaN), "finite" (every pattern is a number),
# "e8m0" (unsigned powers of two, 0xFF is NaN). Layouts as in ml_dtypes and torch.
_MINIFLOATS: dict[str, tuple[int, int, int, str]] = {
    "float8_e3m4": (3, 4, 3, "ieee"),
    "float8_e4m3": (4, 3, 7, "ieee"),
    "float8_e4m3fn": (4, 3, 7, "fn"),
    "float8_e4m3fnuz": (4, 3, 8, "fnuz"),
    "float8_e4m3b11fnuz": (4, 3, 11, "fnuz"),
    "float8_e5m2": (5, 2, 15, "ieee"),
    "float8_e5m2fnuz": (5, 2, 16, "fnuz"),
    "float8_e8m0fnu": (8, 0, 127, "e8m0"),
    "float6_e2m3fn": (2, 3, 1, "finite"),
    "float6_e3m2fn": (3, 2, 3, "finite"),
    "float4_e2m1fn": (2, 1, 1, "finite"),
}
# Sub-byte integers (ml_dtypes): one value per byte, in the low bits.
_SMALL_INTS: dict[str, tuple[int, bool]] = {
    "int1": (1, True),
    "int2": (2, True),
    "int4": (4, True),
    "uint1": (1, False),
    "uint2": (2, False),
    "uint4": (4, False),
}

#: numpy kind-and-size code -> name, of the element types every device library has.
STANDARD: dict[str, str] = {
    "b1": "bool",
    "i1": "int8",
    "i2": "int16",
    "i4": "int32",
    "i8": "int64",
    "u1": "uint8",
    "u2": "uint16",
    "u4": "uint32",
    "u8": "uint64",
    "f2": "float16",
    "f4": "float32",
    "f8": "float64",
    "c8": "complex64",
    "c16": "complex128",
}
STANDARD_CODES = frozenset(STANDARD)
STANDARD_NAMES = frozenset(STANDARD.values())

#: name -> (bytes per element, numpy dtype of the converted values or None)
EXTENDED: dict[str, tuple[int, str | None]] = {
    "bfloat16": (2, "float32"),
    "complex32": (4, "complex64"),
    "float4_e2m1fn_x2": (1, None),
    **{name: (1, "float32") for name in _MINIFLOATS},
    **{name: (1, "int8" if signed else "uint8") for name, (_, signed) in _SMALL_INTS.items()},
}


def storage_dtype(name: str) -> np.dtype[Any]:
    """The unsigned integer dtype that stores elements of ``name``."""
    return np.dtype(f"u{EXTENDED[name][0]}")


def numpy_stand_in(name: str) -> np.dtype[Any]:
    """The numpy dtype that stands for a library's dtype object named ``name`` (torch's
    ``torch.float32`` kept in fitted state) once its arrays become numpy arrays: numpy's
    own type of that name; bfloat16 and complex32 widened as their values are; the
    storage type for the other extended types.

    Raises
    ------
    FormatError
        ``name`` is neither a numpy dtype nor in the table (file-supplied).
    """
    widened = {"bfloat16": "float32", "complex32": "complex64"}.get(name, name)
    try:
        return np.dtype(widened)
    except TypeError:
        pass
    if name not in EXTENDED:
        raise FormatError(f"unknown dtype {name[:64]!r} in a dtype record")
    return storage_dtype(name)


def check(name: Any, host_dtype: np.dtype[Any], where: str = "array") -> str:
    """Validate a ``meta["dtype"]`` read from a file against the stored dtype."""
    if not isinstance(name, str) or name not in EXTENDED:
        raise FormatError(f"{where}: unknown element type {name!r}")
    if np.dtype(host_dtype).newbyteorder("=") != storage_dtype(name):
        raise FormatError(f"{where}: {name} is not stored as {np.dtype(host_dtype)}")
    return name


def native(host: np.ndarray) -> np.ndarray:
    """``host`` in the machine's byte order (files written elsewhere may differ)."""
    return host if host.dtype.isnative else host.astype(host.dtype.newbyteorder("="))


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype :func:`to_numpy` gives for ``name``; DeviceError if none."""
    target = EXTENDED[name][1]
    if target is None:
        raise DeviceError(f"{name} arrays (two values packed per byte) have no numpy form")
    return np.dtype(target)


def to_numpy(host: np.ndarray, name: str) -> np.ndarray:
    """The values of ``host`` (stored bytes of ``name``) as a standard numpy array."""
    # np.asarray: arithmetic on 0-d arrays returns numpy scalars
    return np.asarray(_convert(host.astype(storage_dtype(name), copy=False), name))


def _convert(bits: np.ndarray, name: str) -> Any:
    target = numpy_dtype(name)
    if name == "bfloat16":  # the top half of a float32: exact, NaN payloads included
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if name == "complex32":  # (real, imag) float16 pairs
        pairs = np.ascontiguousarray(bits).reshape(-1).view(np.float16).astype(np.float32)
        return pairs.view(np.complex64).reshape(bits.shape)
    if name in _SMALL_INTS:
        width, signed = _SMALL_INTS[name]
        low = bits & np.uint8((1 << width) - 1)
        if not signed:
            return low
        return (low.astype(np.int16) - ((low >> np.uint8(width - 1)) << width)).astype(target)
    return _minifloat_table(name)[bits]


@functools.cache
def _minifloat_table(name: str) -> np.ndarray:
    """The float32 value of each of the 256 byte patterns of a minifloat."""
    exp_bits, man_bits, bias, special = _MINIFLOATS[name]
    width = exp_bits + man_bits + (special != "e8m0")
    table = np.empty(256, dtype=np.float32)
    max_exp, max_man = (1 << exp_bits) - 1, (1 << man_bits) - 1
    for byte in range(256):
        v = byte & ((1 << width) - 1)
        if special == "e8m0":
            table[byte] = np.nan if v == 0xFF else np.ldexp(np.float32(1), v - bias)
            continue
        sign = -1.0 if v >> (exp_bits + man_bits) else 1.0
        e, m = (v >> man_bits) & max_exp, v & max_man
        if special == "fnuz" and v == 1 << (exp_bits + man_bits):
            value = np.nan
        elif special == "ieee" and e == max_exp:
            value = sign * np.inf if m == 0 else np.nan
        elif special == "fn" and e == max_exp and m == max_man:
            value = np.nan
        elif e == 0:
            value = sign * np.ldexp(m / (1 << man_bits), 1 - bias)
        else:
            value = sign * np.ldexp(1 + m / (1 << man_bits), e - bias)
        table[byte] = value
    table.flags.writeable = False
    return table


def ml_dtypes_name(dtype: np.dtype[Any]) -> str | None:
    """The name of an ``ml_dtypes`` dtype (numpy arrays from JAX), else None."""
    if getattr(dtype.type, "__module__", "") == "ml_dtypes":  # kind "V" or "f"
        name = dtype.type.__name__
        if name in EXTENDED:
            return name
    return None


def ml_dtype(name: str) -> np.dtype[Any]:
    """``ml_dtypes``' numpy dtype for ``name`` (imports ml_dtypes)."""
    try:
        import ml_dtypes
    except ImportError as exc:
        from .._exceptions import MissingLibraryError

        raise MissingLibraryError(
            f"the file holds numpy arrays of ml_dtypes' {name} and 'ml_dtypes' is not "
            "installed: install it to load them"
        ) from exc
    dtype: np.dtype[Any] = np.dtype(getattr(ml_dtypes, name))
    return dtype
