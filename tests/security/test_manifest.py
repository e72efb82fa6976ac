"""Manifest rules of docs/format.md that the reader once broke: the dtype grammar
(``f8`` and ``=f8`` accepted, as native order) and ``meta.precision``; in files of both
format versions, written by the independent spec writer."""

from __future__ import annotations

import sys

import _spec_writer as W
import numpy as np
import pytest

import devpersist

NATIVE = "<" if sys.byteorder == "little" else ">"
VERSION = {"v": 1}


@pytest.fixture(autouse=True, params=[1, 2], ids=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> int:
    VERSION["v"] = request.param
    return int(request.param)


def _array(dtype: object, data: bytes, shape: list[int], **extra: object) -> bytes:
    blob = W.Blob(data, dtype=dtype, shape=shape, extra=dict(extra))
    data = W.seal(W.stream(W.pid(0)), [blob], version=VERSION["v"])
    assert data[8] == VERSION["v"]
    return data


@pytest.mark.parametrize(
    ("spelling", "numpy_name"),
    [("f8", "f8"), ("=f8", "f8"), ("i4", "i4"), ("=u2", "u2"), ("b1", "b1"), ("S3", "S3"),
     ("=U2", "U2"), ("M8[s]", "M8[s]"), ("c16", "c16")],
)  # fmt: skip
def test_native_order_spellings_are_read(spelling: str, numpy_name: str) -> None:
    expected = np.zeros(2, dtype=np.dtype(numpy_name).newbyteorder("="))
    got = devpersist.loads(_array(spelling, expected.tobytes(), [2]))
    assert got.dtype == expected.dtype and got.dtype.isnative
    assert got.tobytes() == expected.tobytes()
    structured = [["a", spelling], ["b", NATIVE + "i2"]]
    value = np.zeros(1, dtype=[("a", numpy_name), ("b", NATIVE + "i2")])
    got = devpersist.loads(_array(structured, value.tobytes(), [1]))
    assert got.dtype == value.dtype


@pytest.mark.parametrize(
    "spelling", ["<b1", "|i4", "<S3", "f", "float64", "==f8", "O", "|O", "<f8 "]
)
def test_other_spellings_are_refused(spelling: str) -> None:
    with pytest.raises(devpersist.FormatError, match="dtype"):
        devpersist.loads(_array(spelling, b"\x00" * 8, [1]))


@pytest.mark.parametrize(
    "meta",
    [
        {"precision": "float8", "cast": "<f4"},
        {"precision": "float16"},
        {"cast": "<f4"},
        {"precision": "bfloat16", "cast": "<f4"},  # bfloat16 is stored as <u2
        {"precision": "float16", "cast": "<i4"},
        {"precision": "float16", "cast": "<f2"},
        {"precision": "float16", "cast": "<f4", "dtype": "bfloat16"},
    ],
)
def test_precision_records_are_validated(meta: dict[str, object]) -> None:
    data = _array("<f2", b"\x00\x3c", [1], meta=meta)
    with pytest.raises(devpersist.FormatError):
        devpersist.info(data)


def test_valid_precision_records_load() -> None:
    got = devpersist.loads(
        _array("<f2", b"\x00\x3c", [1], meta={"precision": "float16", "cast": "<f4"})
    )
    assert got.dtype == np.float32 and got.tolist() == [1.0]
    got = devpersist.loads(
        _array("<u2", b"\x80\x3f", [1], meta={"precision": "bfloat16", "cast": "<f8"})
    )
    assert got.dtype == np.float64 and got.tolist() == [1.0]
