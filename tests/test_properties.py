"""Round-trip properties over generated data: whatever goes in comes out, bit for bit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import devpersist

DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="="),
    hnp.datetime64_dtypes(endianness="="),
    hnp.byte_string_dtypes(endianness="=", max_len=8),
    hnp.unicode_string_dtypes(endianness="=", max_len=8),
    hnp.integer_dtypes(endianness=">"),
    hnp.floating_dtypes(endianness=">", sizes=(32, 64)),
)
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10),
    st.binary(max_size=10), ARRAYS,
)  # fmt: skip
GRAPHS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=12,
)


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return (
            type(b) is np.ndarray
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes(order="A") == b.tobytes(order="A")
            and a.flags.f_contiguous == b.flags.f_contiguous
        )
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(GRAPHS)
def test_any_graph_of_arrays_and_containers_round_trips(obj):
    assert same(obj, devpersist.loads(devpersist.dumps(obj)))


@SETTINGS
@given(ARRAYS, st.sampled_from(["C", "F", "view"]), st.sampled_from([None, "zlib", "lz4"]))
def test_any_array_layout_round_trips(array, layout, codec):
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "view" and array.ndim and array.shape[0] > 1:
        array = array[::2]  # non-contiguous
    out = devpersist.loads(devpersist.dumps({"a": array}, compress=codec))["a"]
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes() == array.tobytes()


@SETTINGS
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=2, max_side=6),
                  elements=st.floats(-1e4, 1e4, width=32)))  # fmt: skip
def test_half_precision_is_within_half_precision(array):
    half = array.astype(np.float16)
    vanished = (half == 0) & (array != 0)
    if vanished.any() and np.abs(array[vanished]).max() > 2**-10 * np.abs(array).max():
        with pytest.raises(devpersist.PrecisionLossError):  # values that would become 0
            devpersist.dumps({"a": array}, precision="float16")
        return
    out = devpersist.loads(devpersist.dumps({"a": array}, precision="float16"))["a"]
    assert out.dtype == array.dtype
    np.testing.assert_allclose(out, array.astype(np.float16).astype(array.dtype), rtol=0, atol=0)


# Sizes around format 2's 64 KiB pack limit: packed, exactly at the limit, own blob.
PACK_SIDES = st.sampled_from([0, 1, 7, 8191, 8192, 8193, 9000])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(PACK_SIDES, min_size=1, max_size=5),
    st.sampled_from([None, "zlib", "lz4"]),
    st.sampled_from(["bytes", "v1", "stream"]),
)
def test_arrays_around_the_pack_limit_round_trip(sides, codec, via):
    """Any mix of packed and unpacked arrays (8,192 float64 = 64 KiB), compressed or
    not, read from bytes, as format 1, or from a non-seekable stream holding two."""
    from devpersist import _format
    from devpersist._options import DumpOptions
    from devpersist._save import prepare

    obj = {f"a{i}": np.arange(n, dtype="<f8") * (i + 1) for i, n in enumerate(sides)}
    if via == "v1":
        prepared = prepare(obj, DumpOptions(compress=codec))
        buf = io.BytesIO()
        _format.write_container(buf, prepared.graph, prepared.blobs, prepared.metadata, version=1)
        assert buf.getvalue()[8] == 1
        out = devpersist.loads(buf.getvalue())
    elif via == "stream":
        data = devpersist.dumps(obj, compress=codec)
        stream = io.BufferedReader(_Unseekable(data + data), buffer_size=4096)
        out = devpersist.load(stream)
        assert same(obj, devpersist.load(stream))
    else:
        out = devpersist.loads(devpersist.dumps(obj, compress=codec))
    assert same(obj, out)


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)
