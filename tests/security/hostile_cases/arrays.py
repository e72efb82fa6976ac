"""Shapes, dtypes, declared sizes, codecs of the arrays."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any

import _hostile as H

from devpersist import FormatError, IntegrityError, ResourceLimitError
from hostile_cases.build import Case, armed_file, array0, edit, plain_file, setter, with_array


def _zero_size(shape: list[int]) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        blob = H.raw_blob({"dtype": "<f8", "shape": shape}, b"")
        return H.container(with_array(), [blob])

    return make


def _codec(meta: dict[str, Any], data: bytes) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        return H.container(with_array(), [H.raw_blob(meta, data)])

    return make


# 11-14. Shapes, dtypes, declared sizes, codecs.
ARRAY_CASES = [
    Case(
        "shape-disagrees-with-length",
        edit(armed_file, array0(setter(shape=[4]))),
        (IntegrityError,),
    ),
    Case(
        "shape-product-overflows-int64",
        edit(armed_file, array0(setter(shape=[2**63, 2**63]))),
        (FormatError,),
    ),
    Case(
        "shape-times-itemsize-wraps-u64",
        edit(armed_file, array0(setter(shape=[2**61 + 3]))),
        (FormatError,),
    ),
    Case("shape-negative", edit(armed_file, array0(setter(shape=[-3]))), (FormatError,)),
    Case("shape-float", edit(armed_file, array0(setter(shape=[3.0]))), (FormatError,)),
    Case("shape-bool", edit(armed_file, array0(setter(shape=[True, 3]))), (FormatError,)),
    Case("shape-65-dims", edit(armed_file, array0(setter(shape=[1] * 64 + [3]))), (FormatError,)),
    Case(
        "shape-zero-size-but-a-2**70-dimension",
        _zero_size([0, 2**70]),
        (FormatError, ResourceLimitError),
    ),
    Case(
        "shape-zero-size-but-2**62-x-2**62",
        _zero_size([0, 2**62, 2**62]),
        (FormatError, ResourceLimitError),
    ),
    Case("dtype-object", edit(armed_file, array0(setter(dtype="|O"))), (FormatError,)),
    Case("dtype-object-O8", edit(armed_file, array0(setter(dtype="O8"))), (FormatError,)),
    Case(
        "dtype-structured-with-object-field",
        edit(armed_file, array0(setter(dtype=[["a", "|O"], ["b", "<f8"]], shape=[1]))),
        (FormatError,),
    ),
    Case(
        "dtype-nested-structured-with-object-field",
        edit(armed_file, array0(setter(dtype=[["a", [["b", "|O"]]], ["c", "<u8"]], shape=[1]))),
        (FormatError,),
    ),
    Case("dtype-unknown", edit(armed_file, array0(setter(dtype="<x8"))), (FormatError,)),
    Case(
        "dtype-numpy-string-with-code",
        edit(armed_file, array0(setter(dtype="f8,O"))),
        (FormatError,),
    ),
    Case(
        "dtype-a-json-object",
        edit(armed_file, array0(setter(dtype={"descr": "|O"}))),
        (FormatError,),
    ),
    Case(
        "dtype-structured-20-levels-deep",
        edit(
            armed_file,
            array0(
                setter(dtype=functools.reduce(lambda d, _: [["a", d]], range(20), "<f8"), shape=[3])
            ),
        ),
        (FormatError,),
    ),
    Case(
        "dtype-subarray-of-2**62-elements",
        edit(armed_file, array0(setter(dtype=[["a", "<f8", [2**62]]], shape=[0], length=0))),
        (FormatError,),
    ),
    Case(
        "dtype-datetime-bogus-unit",
        edit(armed_file, array0(setter(dtype="<M8[xx]"))),
        (FormatError,),
    ),
    Case("codec-unknown", edit(armed_file, array0(setter(codec="bz2"))), (FormatError,)),
    Case(
        "codec-declares-8-TiB-of-output",
        _codec({"dtype": "<f8", "shape": [2**40], "codec": "zlib"}, zlib.compress(bytes(64))),
        (IntegrityError, ResourceLimitError),
    ),
    Case(
        "codec-decompression-bomb (10 MB of zeros declared as 128 bytes)",
        _codec({"dtype": "<f8", "shape": [16], "codec": "zlib"}, zlib.compress(bytes(10**7), 9)),
        (IntegrityError,),
    ),
    Case(
        "codec-data-is-not-compressed",
        _codec({"dtype": "<f8", "shape": [16], "codec": "zlib"}, bytes(128)),
        (IntegrityError,),
    ),
    Case(
        "array-namespace-unknown", edit(plain_file, array0(setter(namespace="os"))), (FormatError,)
    ),
]
