"""The save path's shortcuts give the same bytes and verdicts as the long way."""

from __future__ import annotations

import numpy as np


def _stored(data: bytes, index: int) -> np.ndarray:
    import devpersist

    meta = devpersist.info(data)
    entry = meta["arrays"][index]
    start = entry["offset"] + (meta["pack"]["offset"] if entry.get("packed") else 0)
    return np.frombuffer(data, np.uint8, entry["length"], start)


def test_structured_padding_zeroed_across_pieces_and_strides():
    """Two padding stretches per item, an array of several pieces, a strided source."""
    import devpersist
    from devpersist.arrays._numpy import PADDED_PIECE

    dtype = np.dtype([("a", "u1"), ("b", "<f8"), ("c", "<u2"), ("d", "<i4")], align=True)
    assert dtype.itemsize == 24  # a@0, padding 1-7, b@8, c@16, padding 18-19, d@20
    count = 2 * (PADDED_PIECE // 24) + 7  # three pieces, the last one partial
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 256, size=2 * count * 24, dtype=np.uint8)  # padding non-zero
    source = raw.view(dtype)[::2]  # not contiguous
    assert not source.flags.c_contiguous
    data = devpersist.dumps({"s": source})

    expected = np.ascontiguousarray(raw.reshape(-1, 24)[::2]).copy()
    expected[:, 1:8] = 0
    expected[:, 18:20] = 0
    assert np.array_equal(_stored(data, 0), expected.reshape(-1))
    out = devpersist.loads(data)["s"]
    assert out.dtype == dtype and out.shape == source.shape
    # bit for bit (random bytes make NaNs): the stored bytes, padding zeroed
    assert np.array_equal(
        np.ascontiguousarray(out).view(np.uint8).reshape(-1), expected.reshape(-1)
    )
    for name in ("a", "c", "d"):
        assert np.array_equal(out[name], source[name])


def test_structured_padding_zeroed_for_2d_fortran_and_empty():
    import devpersist

    dtype = np.dtype([("x", "<i8"), ("y", "u1")], align=True)  # padding 9-15
    raw = np.arange(1, 6 * 16 + 1, dtype=np.uint8) | 1
    arr = np.asfortranarray(raw.view(dtype).reshape(2, 3))
    data = devpersist.dumps({"s": arr, "e": np.zeros(0, dtype)})
    expected = np.ascontiguousarray(arr).view(np.uint8).reshape(-1, 16).copy()
    expected[:, 9:16] = 0
    meta = devpersist.info(data)
    index = next(i for i, e in enumerate(meta["arrays"]) if e["shape"] == [2, 3])
    assert np.array_equal(_stored(data, index), expected.reshape(-1))
    out = devpersist.loads(data)
    assert out["s"].shape == (2, 3) and out["e"].shape == (0,) and out["e"].dtype == dtype
    assert np.array_equal(out["s"]["x"], arr["x"]) and np.array_equal(out["s"]["y"], arr["y"])


def test_structured_padding_zeroed_for_every_item_size():
    """Items of 3, 4, 6 and 12 bytes (masked byte, 4-, 2- and 4-byte word at a time)."""
    import devpersist

    cases = [
        (np.dtype({"names": ["a"], "formats": ["u1"], "offsets": [1], "itemsize": 3}), [0, 2]),
        (np.dtype([("a", "u1"), ("b", "<u2")], align=True), [1]),
        (
            np.dtype(
                {"names": ["a", "b"], "formats": ["u1", "u1"], "offsets": [0, 4], "itemsize": 6}
            ),
            [1, 2, 3, 5],
        ),
        (np.dtype([("a", "<i4"), ("b", "u1"), ("c", "<i4")], align=True), [5, 6, 7]),
    ]
    for dtype, padding in cases:
        raw = np.arange(1, 7 * dtype.itemsize + 1, dtype=np.uint8)  # no zero byte
        arr = raw.view(dtype)
        data = devpersist.dumps({"s": arr})
        expected = raw.reshape(-1, dtype.itemsize).copy()
        expected[:, padding] = 0
        assert np.array_equal(_stored(data, 0), expected.reshape(-1)), dtype
        out = devpersist.loads(data)["s"]
        assert out.dtype == dtype and out.view(np.uint8).tobytes() == expected.tobytes()
