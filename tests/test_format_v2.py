"""Format version 2, pinned byte for byte to docs/format.md ("Version 2").

Expected values are written out here (hex, JSON text, offsets by hand) or computed with
xxhash and numpy from those literals: never with devpersist's writer.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import xxhash
from _container import edit_manifest, manifest_of, reseal, split

import devpersist

HEADER = bytes.fromhex("89445650 0d0a1a0a 02000000 00000000")
GRAPH = bytes.fromhex("8005 950b00000000000000 7d 94 8c0178 94 4b00 51 73 2e")
PACKED = bytes.fromhex("00000000 01000000 02000000")
GRAPH_CHECKSUM = "xxh3_64:c0508cb22ba2467d"
PACK_CHECKSUM = "xxh3_64:f7d0630191d9c911"


def tiny() -> bytes:
    return devpersist.dumps({"x": np.arange(3, dtype="<i4")})


def _xxh(data: bytes) -> str:
    return f"xxh3_64:{xxhash.xxh3_64_intdigest(data):016x}"


def test_tiny_is_exact():
    data = tiny()
    assert data[:16] == HEADER and data[16:64] == bytes(48)
    assert data[64:86] == GRAPH and data[86:128] == bytes(42)
    assert data[128:140] == PACKED and data[140:192] == bytes(52)  # the pack, then padding
    offset, length, raw = split(data)
    prefix = (
        '{"format_version":2,"alignment":64,'
        f'"graph":{{"offset":64,"length":22,"checksum":"{GRAPH_CHECKSUM}"}},'
        f'"pack":{{"offset":128,"length":12,"checksum":"{PACK_CHECKSUM}"}},'
        '"arrays":{"dtypes":["<i4"],"dtype":[0],"shape":[[3]],"order":"C",'
        '"places":[["numpy","cpu"]],"place":[0],"offset":[0],"length":[12],'
        '"checksum":[null],"path":["dict[\'x\']"]},'
        '"globals":[],"object":{"type":"builtins.dict"},"environment":{'
    )
    assert offset == 192 and raw.decode("utf-8").startswith(prefix)
    tail = struct.unpack("<QQQII8s", data[-40:])
    assert tail == (192, length, xxhash.xxh3_64_intdigest(raw), 2, 0, b"DVP1END\n")
    assert len(data) == 192 + length + 40


def test_pack_and_blob_layout_is_exact():
    small_a = np.arange(5, dtype="u1")
    big = np.zeros(9000, dtype="<f8")  # 72,000 bytes: over the 64 KiB pack limit
    small_b = np.arange(3, dtype="<i2")
    data = devpersist.dumps({"a": small_a, "big": big, "b": small_b})
    raw = json.loads(split(data)[2])
    glen = raw["graph"]["length"]
    assert data[64 + glen - 1 : 64 + glen] == b"."  # the pickle's STOP ends the graph
    pack_offset = -(-(64 + glen) // 64) * 64
    # a at 0 (5 bytes), b at 64: members are 64-byte aligned inside the pack
    pack = bytes.fromhex("0001020304" + "00" * 59 + "000001000200")
    big_offset = -(-(pack_offset + len(pack)) // 64) * 64
    assert raw["pack"] == {"offset": pack_offset, "length": 70, "checksum": _xxh(pack)}
    assert data[pack_offset : pack_offset + 70] == pack
    assert raw["arrays"] == {
        "dtypes": ["|u1", "<f8", "<i2"],
        "dtype": [0, 1, 2],
        "shape": [[5], [9000], [3]],
        "order": "CCC",
        "places": [["numpy", "cpu"]],
        "place": [0, 0, 0],
        "offset": [0, big_offset, 64],
        "length": [5, 72000, 6],
        "checksum": [None, _xxh(bytes(72000)), None],
        "path": ["dict['a']", "dict['big']", "dict['b']"],
    }
    assert data[big_offset : big_offset + 72000] == bytes(72000)
    assert not any(data[pack_offset + 70 : big_offset])
    assert split(data)[0] == -(-(big_offset + 72000) // 64) * 64
    out = devpersist.loads(data)
    for key, arr in {"a": small_a, "big": big, "b": small_b}.items():
        np.testing.assert_array_equal(out[key], arr, strict=True)


def test_every_byte_is_checked_and_every_cut_detected():
    data = tiny()
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        with pytest.raises(devpersist.FormatError):
            devpersist.loads(bytes(flipped))
    for n in range(1, len(data)):
        with pytest.raises(devpersist.IntegrityError):
            devpersist.loads(data[:n])


def test_worked_example_in_the_doc_is_these_bytes():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "format.md").read_text("utf-8")
    section = text[text.index("## 14. Worked example, version 2") : text.index("## 15.")]
    data = tiny()
    compared = 0
    for line in section.splitlines():
        head, sep, rest = line.partition(": ")
        if sep and len(head) == 8 and all(c in "0123456789abcdef" for c in head):
            chunk = bytes.fromhex(rest[:48].strip())
            offset = int(head, 16)
            assert data[offset : offset + len(chunk)] == chunk, line
            compared += len(chunk)
    assert compared == 16 + 22 + 12
    prefix = data[192 : data.index(b'"environment":') + len(b'"environment":')].decode()
    assert prefix in section


def _raw_edit(data: bytes, old: str, new: str) -> bytes:
    raw = split(data)[2].decode()
    assert raw.count(old) == 1, old
    return reseal(data, raw.replace(old, new).encode())


COLUMN_CASES = {
    "unknown-column": ('"order":"C"', '"order":"C","strides":[[4]]', devpersist.FormatError),
    "missing-column": ('"place":[0],', "", devpersist.FormatError),
    "short-column": ('"length":[12]', '"length":[12,12]', devpersist.FormatError),
    "bool-for-index": ('"dtype":[0]', '"dtype":[false]', devpersist.FormatError),
    "index-out-of-range": ('"place":[0]', '"place":[1]', devpersist.FormatError),
    "bad-order": ('"order":"C"', '"order":"A"', devpersist.FormatError),
    "object-dtype": ('"dtypes":["<i4"]', '"dtypes":["|O"]', devpersist.FormatError),
    "unknown-namespace": ('[["numpy","cpu"]]', '[["tf","cpu"]]', devpersist.FormatError),
    "shape-times-itemsize": ('"shape":[[3]]', '"shape":[[4]]', devpersist.IntegrityError),
    "packed-offset-hole": ('"offset":[0]', '"offset":[64]', devpersist.IntegrityError),
    "pack-length": ('"length":12,', '"length":16,', devpersist.IntegrityError),
    "codec-on-packed": (
        '"checksum":[null]',
        '"checksum":[null],"codec":["zlib"]',
        devpersist.FormatError,
    ),
    "size-without-codec": ('"length":22,', '"length":22,"size":22,', devpersist.FormatError),
    "no-pack": (
        f'"pack":{{"offset":128,"length":12,"checksum":"{PACK_CHECKSUM}"}},',
        "",
        devpersist.FormatError,
    ),
    "graph-bomb": (
        '"length":22,',
        '"length":22,"codec":"zlib","size":99999999999,',
        devpersist.ResourceLimitError,
    ),
    "uppercase-checksum": ("c0508cb22ba2467d", "C0508CB22BA2467D", devpersist.FormatError),
}


@pytest.mark.parametrize("case", COLUMN_CASES, ids=list(COLUMN_CASES))
def test_column_rules(case):
    old, new, error = COLUMN_CASES[case]
    with pytest.raises(error) as excinfo:
        devpersist.loads(_raw_edit(tiny(), old, new))
    assert type(excinfo.value) is error


def test_the_resealer_presents_rows_and_writes_columns_back():
    data = devpersist.dumps({"a": np.arange(3, dtype="<i4"), "b": np.zeros(9000)})
    rows = manifest_of(data)["arrays"]
    assert [r.get("packed", False) for r in rows] == [True, False]
    assert edit_manifest(data, lambda m: None) == data  # a no-op edit: the same bytes

    def wrong_shape(manifest):
        manifest["arrays"][0]["shape"] = [4]

    with pytest.raises(devpersist.IntegrityError, match="array 0"):
        devpersist.loads(edit_manifest(data, wrong_shape))


@pytest.mark.parametrize("codec", ["zlib", "zstd", "lzma"])
def test_compress_covers_the_graph_and_the_pack(codec):
    if codec == "zstd":
        pytest.importorskip("zstandard")
    obj = {"words": {f"word{i}": i for i in range(2000)}, "small": np.arange(600.0)}
    data = devpersist.dumps(obj, compress=codec)
    raw = json.loads(split(data)[2])
    assert raw["graph"]["codec"] == codec and raw["graph"]["size"] > raw["graph"]["length"]
    assert raw["pack"]["codec"] == codec and raw["pack"]["length"] < 4800
    assert len(data) < len(devpersist.dumps(obj)) / 2
    out = devpersist.loads(data)
    assert out["words"] == obj["words"]
    np.testing.assert_array_equal(out["small"], obj["small"], strict=True)
    assert devpersist.verify(data)["arrays"] == 1


def test_a_corrupt_compressed_graph_is_an_integrity_error():
    data = devpersist.dumps({"words": {f"w{i}": i for i in range(500)}}, compress="zlib")
    raw = json.loads(split(data)[2])
    assert raw["graph"]["codec"] == "zlib"
    bad = bytearray(data)
    bad[raw["graph"]["offset"] + 5] ^= 0xFF
    with pytest.raises(devpersist.IntegrityError, match="checksum"):
        devpersist.loads(bytes(bad))

    def lie(manifest):  # checksum intact, declared size wrong: the decompressor says so
        manifest["graph"]["size"] += 1

    with pytest.raises(devpersist.IntegrityError, match="graph"):
        devpersist.loads(edit_manifest(data, lie))


def test_mmap_of_packed_arrays(tmp_path):
    path = tmp_path / "m.dvp"
    devpersist.dump({"s": np.arange(4.0), "b": np.arange(9000.0)}, path)
    out = devpersist.load(path, mmap=True)  # warnings are errors: none is expected
    np.testing.assert_array_equal(out["s"], np.arange(4.0), strict=True)
    np.testing.assert_array_equal(out["b"], np.arange(9000.0), strict=True)


def test_mmap_of_a_compressed_pack_warns_that_it_decodes(tmp_path):
    path = tmp_path / "c.dvp"
    devpersist.dump({"s": np.arange(100.0)}, path, compress="zlib")  # 800 bytes: packed
    assert devpersist.info(path)["pack"]["codec"] == "zlib"
    with pytest.warns(devpersist.NotMappedWarning, match="1 of 1 arrays"):
        out = devpersist.load(path, mmap=True)
    np.testing.assert_array_equal(out["s"], np.arange(100.0), strict=True)


def test_the_pack_stops_at_its_size_limit(monkeypatch):
    from devpersist import _writer

    monkeypatch.setattr(_writer, "PACK_MAX_TOTAL", 208)  # two of these: 0-80, 128-208
    obj = [np.full(10, i, dtype="<f8") for i in range(4)]  # 80 bytes each
    data = devpersist.dumps(obj)
    rows = devpersist.info(data)["arrays"]
    assert [r.get("packed", False) for r in rows] == [True, True, False, False]
    assert [r["offset"] for r in rows[:2]] == [0, 128]
    out = devpersist.loads(data)
    for got, sent in zip(out, obj, strict=True):
        np.testing.assert_array_equal(got, sent, strict=True)
