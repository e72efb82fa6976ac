"""Compression and reduced-precision storage."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

import devpersist
from devpersist import _format
from devpersist._graph import dump_graph, scan

CODECS = ["zstd", "lz4", "zlib", "lzma"]


def _payload():
    rng = np.random.default_rng(0)
    return {
        "dense": rng.random((200, 64)),
        "fortran": np.asfortranarray(rng.random((50, 40), dtype=np.float32)),
        "ints": np.arange(10_000, dtype=np.int64),
        "small": np.arange(3.0),  # below the compression threshold
        "zeros": np.zeros(100_000),
    }


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_round_trip_is_exact(codec):
    if codec == "zstd":
        pytest.importorskip("zstandard")
    if codec == "lz4":
        pytest.importorskip("lz4")
    payload = _payload()
    data = devpersist.dumps(payload, compress=codec)
    assert len(data) < len(devpersist.dumps(payload))
    codecs = {a["path"]: a.get("codec") for a in devpersist.info(data)["arrays"]}
    assert codecs["dict['small']"] is None and codecs["dict['dense']"] == codec
    out = devpersist.loads(data)
    for key, value in payload.items():
        assert out[key].dtype == value.dtype and out[key].tobytes(order="A") == value.tobytes(
            order="A"
        )
        assert out[key].flags.f_contiguous == value.flags.f_contiguous


def test_compression_level_and_bad_options():
    payload = _payload()
    assert devpersist.loads(devpersist.dumps(payload, compress=("zlib", 1)))["ints"][-1] == 9_999
    with pytest.raises(ValueError, match="codec"):
        devpersist.dumps(payload, compress="brotli")
    with pytest.raises(ValueError, match="precision"):
        devpersist.dumps(payload, precision="float8")


@pytest.mark.parametrize("precision, tol", [("float16", 1e-3), ("bfloat16", 8e-3)])
def test_precision_is_recorded_and_restored(precision, tol):
    payload = _payload()
    data = devpersist.dumps(payload, precision=precision)
    entries = {a["path"]: a for a in devpersist.info(data)["arrays"]}
    dense = entries["dict['dense']"]
    assert dense["meta"] == {"cast": "<f8", "precision": precision}
    assert "meta" not in entries["dict['ints']"]  # integers are never reduced
    out = devpersist.loads(data)
    assert out["dense"].dtype == np.float64 and out["fortran"].dtype == np.float32
    np.testing.assert_allclose(out["dense"], payload["dense"], rtol=tol)
    assert np.array_equal(out["ints"], payload["ints"])
    raw = devpersist.loads(data, restore_precision=False)
    assert raw["dense"].dtype == (np.float16 if precision == "float16" else np.float32)


def test_bfloat16_rounding_matches_torch():
    torch = pytest.importorskip("torch")
    from devpersist._codecs import to_bfloat16_bits

    values = np.random.default_rng(1).normal(size=10_000).astype(np.float32)
    ours = to_bfloat16_bits(values)
    theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, theirs)


def _bomb(codec: str) -> bytes:
    """A valid-looking file whose 10-element array decompresses to 64 MiB."""
    from devpersist._codecs import compress_chunks

    array = np.zeros(10)
    graph, refs = dump_graph({"a": array})
    zeros = memoryview(bytes(64 * 2**20))
    chunks = list(compress_chunks([zeros], codec, 1))
    meta = {"dtype": "<f8", "shape": [10], "order": "C", "namespace": "numpy",
            "device": "cpu", "codec": codec}  # fmt: skip
    blob = _format.BlobSource(meta, -1, iter(chunks))
    out = io.BytesIO()
    names = sorted([list(n) for n in scan(graph, 1)])
    _format.write_container(out, graph, [blob], {"globals": names})
    return out.getvalue()


@pytest.mark.parametrize("codec", CODECS)
def test_decompression_bombs_are_rejected_with_bounded_memory(codec):
    if codec == "zstd":
        pytest.importorskip("zstandard")
    if codec == "lz4":
        pytest.importorskip("lz4")
    data = _bomb(codec)
    assert len(data) < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(devpersist.IntegrityError, match="size"):
            devpersist.loads(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # never inflated to 64 MiB


def test_corrupted_compressed_bytes_fail_the_checksum_first():
    data = bytearray(devpersist.dumps(_payload(), compress="zlib"))
    entry = devpersist.info(bytes(data))["arrays"][0]
    data[entry["offset"] + 10] ^= 0xFF
    with pytest.raises(devpersist.IntegrityError, match="checksum"):
        devpersist.loads(bytes(data))


def test_mmap_load_returns_read_only_views_of_the_file(tmp_path):
    payload = _payload()
    path = tmp_path / "m.dvp"
    devpersist.dump(payload, path)
    mapped = devpersist.load(path, mmap=True)
    for key, value in payload.items():
        assert not mapped[key].flags.writeable and not mapped[key].flags.owndata
        assert mapped[key].tobytes(order="A") == value.tobytes(order="A")
        assert mapped[key].flags.f_contiguous == value.flags.f_contiguous
    with pytest.raises(ValueError):
        mapped["dense"][0, 0] = 1.0
    del mapped
    # compressed or reduced-precision arrays cannot be mapped: they are decoded instead
    devpersist.dump(payload, path, compress="zlib")
    with pytest.warns(devpersist.NotMappedWarning, match="compressed"):
        assert devpersist.load(path, mmap=True)["dense"].flags.writeable
    with pytest.warns(devpersist.NotMappedWarning, match="not a local file"):
        devpersist.load(io.BytesIO(devpersist.dumps(payload)), mmap=True)


def test_mmap_skips_checksums_unless_asked(tmp_path):
    path = tmp_path / "m.dvp"
    devpersist.dump(_payload(), path)
    data = bytearray(path.read_bytes())
    entry = devpersist.info(bytes(data))["arrays"][0]
    data[entry["offset"]] ^= 1
    path.write_bytes(bytes(data))
    assert devpersist.load(path, mmap=True)["dense"].shape == (200, 64)  # lazy: not read
    with pytest.raises(devpersist.IntegrityError):
        devpersist.load(path, mmap=True, verify=True)
    with pytest.raises(devpersist.IntegrityError):
        devpersist.load(path)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", ["random", "zeros", "mixed"])
def test_decompress_into_is_exact_and_rejects_bad_streams(codec, kind):
    from devpersist._codecs import compress_chunks, decompress_into

    pytest.importorskip({"zstd": "zstandard", "lz4": "lz4"}.get(codec, "zlib"))
    rng = np.random.default_rng(3)
    parts = {
        "random": [rng.integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()],
        "zeros": [bytes(5_000_000)],
        "mixed": [rng.integers(0, 256, 700_000, dtype=np.uint8).tobytes(), bytes(4_000_000)],
    }[kind]
    raw = b"".join(parts)
    packed = b"".join(compress_chunks([memoryview(p) for p in parts], codec, 1))
    out = bytearray(len(raw))
    decompress_into(codec, memoryview(packed), memoryview(out))
    assert out == raw
    for size in (1000, 65_537):  # the same input, handed over in pieces
        pieces = (memoryview(packed)[i : i + size] for i in range(0, len(packed), size))
        out = bytearray(len(raw))
        decompress_into(codec, pieces, memoryview(out))
        assert out == raw
    truncated, trailing, twice = packed[:-7], packed + b"\x00garbage", packed + packed
    for data in (truncated, trailing, twice):
        with pytest.raises(devpersist.IntegrityError):
            decompress_into(codec, memoryview(data), memoryview(bytearray(len(raw))))
    for size in (len(raw) - 1, len(raw) + 1):  # declared size off by one either way
        with pytest.raises(devpersist.IntegrityError, match="size|decompress"):
            decompress_into(codec, memoryview(packed), memoryview(bytearray(size)))


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_arrays_stream_from_files_in_bounded_memory(codec, tmp_path, monkeypatch):
    pytest.importorskip({"zstd": "zstandard", "lz4": "lz4"}.get(codec, "zlib"))
    monkeypatch.setattr(_format, "READ_CHUNK", 1 << 20)
    rng = np.random.default_rng(4)
    big = rng.integers(0, 256, 24 * 2**20, dtype=np.uint8)  # incompressible: 24 MiB stored
    big[: 2**20] = 0
    path = tmp_path / "c.dvp"
    devpersist.dump(
        {"big": big, "small": np.arange(5000.0)},
        path,
        compress=(codec, 0 if codec != "zlib" else 1),
    )
    tracemalloc.start()
    try:
        loaded = devpersist.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(loaded["big"], big) and np.array_equal(loaded["small"], np.arange(5000.0))
    # the array, two 1 MiB pieces and the codec's buffers; not a second copy of the blob
    assert peak < big.nbytes + 12 * 2**20
    entry = devpersist.info(path)["arrays"][0]
    data = bytearray(path.read_bytes())
    data[entry["offset"] + entry["length"] // 2] ^= 0x40  # in a middle piece
    path.write_bytes(bytes(data))
    with pytest.raises(devpersist.IntegrityError, match="checksum"):
        devpersist.load(path)
    with pytest.raises(devpersist.IntegrityError, match="checksum"):
        devpersist.verify(path)
