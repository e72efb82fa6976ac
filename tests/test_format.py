"""The container format, pinned byte for byte to docs/format.md, and the golden files."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

import devpersist
from devpersist import _format
from devpersist._environment import mismatches

DATA = Path(__file__).parent / "data"
DOC = Path(__file__).parent.parent / "docs" / "format.md"
SIDECARS = sorted(DATA.glob("v*_golden.json"))

# The worked example of docs/format.md: dumps({"x": np.arange(3, dtype="<i4")}).
HEADER = bytes.fromhex("89445650 0d0a1a0a 01000000 00000000")
GRAPH = bytes.fromhex("8005 950b00000000000000 7d 94 8c0178 94 4b00 51 73 2e")
BLOB = bytes.fromhex("00000000 01000000 02000000")
GRAPH_CHECKSUM = "xxh3_64:c0508cb22ba2467d"
BLOB_CHECKSUM = "xxh3_64:f7d0630191d9c911"


def dumps_v1(obj: Any) -> bytes:
    """``obj`` in format version 1, to pin the version 1 reader (files of that version
    exist, and load for good); the writer writes version 2 by default."""
    from devpersist._options import DumpOptions
    from devpersist._save import prepare

    prepared = prepare(obj, DumpOptions())
    buf = io.BytesIO()
    _format.write_container(buf, prepared.graph, prepared.blobs, prepared.metadata, version=1)
    return buf.getvalue()


def tiny() -> bytes:
    """The worked example of docs/format.md, version 1."""
    return dumps_v1({"x": np.arange(3, dtype="<i4")})


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _split(data: bytes) -> tuple[int, int, bytes]:
    """Manifest offset, length and bytes, from the trailer."""
    offset, length = struct.unpack_from("<QQ", data, len(data) - 40)
    return offset, length, data[offset : offset + length]


def reseal(data: bytes, manifest: bytes, *, trailer_version: int | None = None) -> bytes:
    """Replace the manifest's bytes; fix the trailer's length and checksum."""
    offset, _, _ = _split(data)
    version = (
        struct.unpack_from("<I", data, len(data) - 16)[0]
        if trailer_version is None
        else trailer_version
    )
    tail = _format.TRAILER.pack(
        offset, len(manifest), xxhash.xxh3_64_intdigest(manifest), version, 0, _format.END_MAGIC
    )
    return data[:offset] + manifest + tail


def with_versions(data: bytes, header: int, trailer: int, manifest: int) -> bytes:
    """``data`` with its three format version fields set (and re-sealed)."""
    raw = json.loads(_split(data)[2])
    raw["format_version"] = manifest
    out = reseal(data, _compact(raw).encode(), trailer_version=trailer)
    return out[:8] + struct.pack("<I", header) + out[12:]


def _load_make_golden() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_golden = _load_make_golden()


# --------------------------------------------------------------------------- constants


def test_constants():
    assert _format.MAGIC.hex() == "894456500d0a1a0a"
    assert _format.END_MAGIC == b"DVP1END\n" and _format.END_MAGIC.hex() == "44565031454e440a"
    assert devpersist.FORMAT_VERSION == _format.FORMAT_VERSION == 2
    assert _format.PACK_MAX_BYTES == 65536
    assert (_format.HEADER.size, _format.TRAILER.size, _format.ALIGNMENT) == (16, 40, 64)
    assert _format.MAX_MANIFEST_BYTES == 64 * 2**20
    assert [_format.align(n) for n in (0, 1, 16, 64, 65, 128)] == [0, 64, 64, 64, 128, 128]


def test_checksum_is_xxh3_64_seed_0_in_lowercase_hex():
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2
    assert xxhash.xxh3_64_hexdigest(b"abc") == "78af5f94892f3950"
    assert _format.checksum_text(0) == "xxh3_64:0000000000000000"
    assert _format.checksum_text(xxhash.xxh3_64_intdigest(GRAPH)) == GRAPH_CHECKSUM
    assert _format.checksum_text(xxhash.xxh3_64_intdigest(BLOB)) == BLOB_CHECKSUM


# --------------------------------------------------------------------------- exact bytes


def test_header_and_sections_are_exact():
    data = tiny()
    assert data[:16] == HEADER
    assert data[16:64] == bytes(48)
    assert data[64:86] == GRAPH
    assert data[86:128] == bytes(42)
    assert data[128:140] == BLOB
    assert data[140:192] == bytes(52)


def _check_environment(env: dict[str, Any]) -> None:
    """The recorded environment, against facts read here (not by devpersist's code)."""
    import platform

    assert set(env) == {"python", "platform", "packages", "devices"}
    assert env["python"] == platform.python_version()
    assert env["platform"] == f"{platform.system()}-{platform.machine()}"
    assert env["packages"]["devpersist"] == devpersist.__version__
    assert env["packages"]["numpy"] == np.__version__
    assert set(env["devices"]) == {"cpu"} and isinstance(env["devices"]["cpu"], str)


def test_manifest_is_exact():
    data = tiny()
    prefix = (
        '{"format_version":1,"alignment":64,'
        f'"graph":{{"offset":64,"length":22,"checksum":"{GRAPH_CHECKSUM}"}},'
        '"arrays":[{"dtype":"<i4","shape":[3],"order":"C","namespace":"numpy",'
        f'"device":"cpu","path":"dict[\'x\']","offset":128,"length":12,"checksum":"{BLOB_CHECKSUM}"}}],'
        '"globals":[],"object":{"type":"builtins.dict"},"environment":'
    )
    offset, length, manifest = _split(data)
    assert offset == 192
    text = manifest.decode("utf-8")
    assert text.startswith(prefix)
    rest = json.loads("{" + text[len(prefix) - len('"environment":') :])
    _check_environment(rest.pop("environment"))
    assert set(rest) <= {"config"}  # present once scikit-learn is imported (other tests)


def test_trailer_is_exact():
    data = tiny()
    manifest = _split(data)[2]
    offset, length, digest, version, reserved, end = struct.unpack("<QQQII8s", data[-40:])
    assert (offset, length, version, reserved, end) == (192, len(manifest), 1, 0, b"DVP1END\n")
    assert digest == xxhash.xxh3_64_intdigest(manifest)
    assert data[-16:] == bytes.fromhex("01000000 00000000 44565031454e440a")
    assert len(data) == 192 + len(manifest) + 40  # the trailer follows the manifest unaligned


def test_layout_offsets_padding_and_blobs():
    arrays = {
        "a": np.arange(5, dtype="u1"),
        "e1": np.zeros(0, dtype="<f8"),  # empty blobs take no space: they share an offset
        "e2": np.zeros((0, 2), dtype="<f4"),
        "b": np.arange(70, dtype="u1"),
        "f": np.asfortranarray(np.arange(6, dtype=">i2").reshape(2, 3)),
        "s": np.array([(1, b"ab")], dtype=[("i", "<u4"), ("t", "S2")]),
        "z": np.array(7.0, dtype="<f8"),
    }
    data = dumps_v1(arrays)
    manifest = json.loads(_split(data)[2])
    graph = manifest["graph"]
    assert graph["offset"] == 64
    end = graph["offset"] + graph["length"]
    assert graph["checksum"] == _format.checksum_text(xxhash.xxh3_64_intdigest(data[64:end]))
    entries = manifest["arrays"]
    assert [e["path"] for e in entries] == [f"dict[{k!r}]" for k in arrays]
    for entry, arr in zip(entries, arrays.values(), strict=True):
        start = _format.align(end)
        assert entry["offset"] == start and not any(data[end:start])
        end = start + entry["length"]
        blob = data[start:end]
        assert entry["length"] == arr.size * arr.dtype.itemsize
        assert blob == arr.tobytes(order=entry["order"])
        assert entry["checksum"] == _format.checksum_text(xxhash.xxh3_64_intdigest(blob))
        assert entry["shape"] == list(arr.shape)
    assert [e["order"] for e in entries] == ["C", "C", "C", "C", "F", "C", "C"]
    assert entries[1]["offset"] == entries[2]["offset"] == entries[3]["offset"]
    assert [e["dtype"] for e in entries][4:] == [">i2", [["i", "<u4"], ["t", "|S2"]], "<f8"]
    offset, length, _ = _split(data)
    assert offset == _format.align(end) and not any(data[end:offset])
    assert len(data) == offset + length + 40


def doc_section(start: str, end: str) -> str:
    """The text of docs/format.md from the heading ``start`` to the heading ``end``."""
    text = DOC.read_text("utf-8")
    return text[text.index(start) : text.index(end)]


def doc_hex_lines(section: str) -> list[tuple[int, bytes]]:
    """``OFFSET: hex bytes`` lines of a worked example in docs/format.md."""
    lines = []
    for match in re.finditer(r"^([0-9a-f]{8}): ((?:[0-9a-f]{2} )*[0-9a-f]{2})", section, re.M):
        lines.append((int(match.group(1), 16), bytes.fromhex(match.group(2))))
    return lines


def test_worked_example_in_the_doc_is_these_bytes():
    data = tiny()
    fixed = data.index(b'"environment":')  # what follows depends on the machine
    compared = 0
    for offset, chunk in doc_hex_lines(doc_section("## 12. Worked example", "## 13.")):
        chunk = chunk[: max(0, fixed - offset)]
        assert data[offset : offset + len(chunk)] == chunk, f"docs/format.md line {offset:08x}"
        compared += len(chunk)
    assert compared == 16 + 22 + 12 + (fixed - 192)  # header, graph, blob, manifest prefix
    text = DOC.read_text("utf-8")
    for needle in (
        GRAPH_CHECKSUM,
        BLOB_CHECKSUM,
        "89 44 56 50 0d 0a 1a 0a",
        "44 56 50 31 45 4e 44 0a",
    ):
        assert needle in text


# --------------------------------------------------------------------------- determinism


def test_dumps_is_deterministic():
    payload = make_golden.arrays_payload()
    first = devpersist.dumps(payload)
    assert devpersist.dumps(payload) == first
    assert devpersist.dumps(make_golden.arrays_payload()) == first  # equal, not identical
    assert devpersist.dumps(make_golden.pipeline_model()) == devpersist.dumps(
        make_golden.pipeline_model()
    )


# --------------------------------------------------------------------------- golden files


def _sidecar(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8"))  # type: ignore[no-any-return]


def _load_golden(path: Path) -> Any:
    """Load a golden file, expecting the version warning exactly when the policy says so."""
    if mismatches(devpersist.info(path)["environment"]):
        with pytest.warns(devpersist.VersionMismatchWarning):
            return devpersist.load(path)
    return devpersist.load(path)


def _describe(arr: np.ndarray) -> dict[str, Any]:
    return {
        "descr": json.loads(json.dumps(np.lib.format.dtype_to_descr(arr.dtype))),
        "shape": list(arr.shape),
        "order": "F"
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous
        else "C",
        "writeable": bool(arr.flags.writeable),
        "sha256": hashlib.sha256(arr.tobytes(order="C")).hexdigest(),
    }


def test_there_is_a_golden_file_set_for_every_format_version():
    versions = [_sidecar(p)["format_version"] for p in SIDECARS]
    assert versions == list(range(1, devpersist.FORMAT_VERSION + 1))


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda p: p.stem)
def test_golden_files_are_intact(sidecar):
    expected = _sidecar(sidecar)
    for name, facts in expected["files"].items():
        path = DATA / name
        data = path.read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (facts["sha256"], facts["size"])
        meta = devpersist.info(path)
        assert meta["format_version"] == expected["format_version"]
        assert meta["file_size"] == len(data)
        assert meta["environment"] == facts["made_with"]
        with open(path, "rb") as f:  # every checksum and padding byte, without loading
            container = _format.Container.open(_format.FileSource(f, 0, len(data)))
            container.check_padding()
            container.graph()
            for i in range(len(container.arrays)):
                container.stored_blob(i).finish()


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda p: p.stem)
def test_golden_arrays_load_bit_for_bit(sidecar):
    expected = _sidecar(sidecar)["arrays"]
    path = DATA / expected["file"]
    assert devpersist.info(path)["globals"] == []
    assert devpersist.get_untrusted_types(path) == []
    loaded = _load_golden(path)
    arrays = {k: v for k, v in loaded.items() if isinstance(v, np.ndarray)}
    assert set(arrays) == set(expected["arrays"])
    for key, facts in expected["arrays"].items():
        assert _describe(arrays[key]) == facts, key
    for first, second in expected["same_object"]:
        assert loaded[first] is loaded[second]
    others = {k: repr(v) for k, v in loaded.items() if not isinstance(v, np.ndarray)}
    assert others == expected["python_repr"]


def _floats(hexes: Any) -> np.ndarray:
    return np.array([[float.fromhex(v) for v in row] for row in hexes], dtype=np.float64)


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda p: p.stem)
def test_golden_model_predicts_bit_for_bit(sidecar):
    expected = _sidecar(sidecar)
    facts = expected["pipeline"]
    path = DATA / facts["file"]
    made_with = expected["files"][facts["file"]]["made_with"]["packages"]["scikit-learn"]
    import sklearn

    if sklearn.__version__ != made_with:
        pytest.skip(
            f"{facts['file']} holds a scikit-learn {made_with} model; scikit-learn "
            f"{sklearn.__version__} does not promise to load it (the format tests above still run)"
        )
    assert devpersist.get_untrusted_types(path) == []
    model = devpersist.unwrap(_load_golden(path))
    assert f"{type(model).__module__}.{type(model).__qualname__}" == facts["type"]
    X = _floats(facts["X"])
    assert model.classes_.tolist() == facts["classes"]
    assert model.predict(X).tolist() == facts["predict"]
    np.testing.assert_array_equal(
        model.predict_proba(X), _floats(facts["predict_proba"]), strict=True
    )
    np.testing.assert_array_equal(
        model.decision_function(X), _floats(facts["decision_function"]), strict=True
    )


# --------------------------------------------------------------------------- versions


def _every_reader(data: bytes, tmp_path: Path) -> list[Any]:
    path = tmp_path / "file.dvp"
    path.write_bytes(data)
    return [
        lambda: devpersist.loads(data),
        lambda: devpersist.load(path),
        lambda: devpersist.load(io.BytesIO(data)),
        lambda: devpersist.info(data),
        lambda: devpersist.get_untrusted_types(path),
    ]


def test_a_newer_format_version_is_refused_naming_both_versions(tmp_path):
    data = with_versions(tiny(), 3, 3, 3)
    assert data[8:12] == b"\x03\x00\x00\x00" and data[-16:-12] == b"\x03\x00\x00\x00"
    assert b'"format_version":3' in data
    for read in _every_reader(data, tmp_path):
        with pytest.raises(devpersist.UnsupportedFormatVersionError) as excinfo:
            read()
        message = str(excinfo.value)
        assert re.search(r"\bversion 3\b", message) and re.search(r"\bversion 2\b", message), (
            message
        )
        assert isinstance(excinfo.value, devpersist.FormatError)


@pytest.mark.parametrize("version", [3, 7, 2**32 - 1])
def test_the_header_version_is_checked_before_anything_else(version):
    data = tiny()
    newer = data[:8] + struct.pack("<I", version) + data[12:]  # trailer and manifest say 1
    with pytest.raises(devpersist.UnsupportedFormatVersionError, match=rf"\b{version}\b"):
        devpersist.loads(newer)
    truncated = newer[:20]  # not even a trailer: the version still speaks first
    with pytest.raises(devpersist.UnsupportedFormatVersionError):
        devpersist.loads(truncated)


@pytest.mark.parametrize(
    "versions",
    [(0, 0, 0), (1, 2, 1), (1, 1, 2), (1, 2, 2)],
    ids=["zero", "trailer-differs", "manifest-differs", "header-older"],
)
def test_inconsistent_or_zero_versions_are_integrity_errors(versions):
    with pytest.raises(devpersist.IntegrityError):
        devpersist.loads(with_versions(tiny(), *versions))


@pytest.mark.parametrize(
    ("offset", "size"), [(12, 4), (-12, 4)], ids=["header-flags", "trailer-reserved"]
)
def test_flags_and_reserved_must_be_zero(offset, size):
    data = bytearray(tiny())
    data[offset : offset + size or None] = struct.pack("<I", 1)
    with pytest.raises(devpersist.IntegrityError):
        devpersist.loads(bytes(data))


# --------------------------------------------------------------------------- integrity


def test_truncation_at_every_length_is_detected():
    data = tiny()
    for n in range(1, len(data)):
        with pytest.raises(devpersist.IntegrityError):
            devpersist.loads(data[:n])
    with pytest.raises(devpersist.NotDevpersistError, match="empty"):
        devpersist.loads(b"")


@pytest.mark.parametrize("extra", [b"\x00", bytes(63), bytes(64), b"x" * 1000, "trailer", "file"])
def test_appended_bytes_are_detected(tmp_path, extra):
    data = tiny()
    extra = {"trailer": data[-40:], "file": data}.get(extra, extra)  # type: ignore[call-overload]
    path = tmp_path / "f.dvp"
    path.write_bytes(data + extra)
    for read in (
        lambda: devpersist.loads(data + extra),
        lambda: devpersist.load(path),
        lambda: devpersist.info(path),
    ):
        with pytest.raises(devpersist.IntegrityError):
            read()


def test_every_byte_is_checked():
    data = tiny()
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        with pytest.raises(devpersist.FormatError):
            devpersist.loads(bytes(flipped))


# --------------------------------------------------------------------------- manifest rules


def _edit(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert raw.count(old) == 1, old
    return raw.replace(old, new)


MANIFEST_CASES = {
    "unknown-top-level-key": (b'"globals":[]', b'"globals":[],"extra":1', devpersist.FormatError),
    "unknown-graph-key": (b'"offset":64,', b'"offset":64,"x":0,', devpersist.FormatError),
    "unknown-array-key": (b'"order":"C"', b'"order":"C","strides":[4]', devpersist.FormatError),
    "unknown-meta-key": (
        b'"device":"cpu"',
        b'"device":"cpu","meta":{"pinned":true}',
        devpersist.FormatError,
    ),
    "missing-required-key": (b'"globals":[],', b"", devpersist.FormatError),
    "duplicate-key": (
        b'{"format_version":1,',
        b'{"format_version":1,"format_version":1,',
        devpersist.FormatError,
    ),
    "nested-duplicate-key": (b'"order":"C"', b'"order":"C","order":"C"', devpersist.FormatError),
    "nan-constant": (b'"builtins.dict"', b"NaN", devpersist.FormatError),
    "float-for-int": (b'"alignment":64', b'"alignment":64.0', devpersist.FormatError),
    "bool-for-int": (b'"format_version":1', b'"format_version":true', devpersist.FormatError),
    "other-alignment": (b'"alignment":64', b'"alignment":128', devpersist.FormatError),
    "object-dtype": (b'"<i4"', b'"|O"', devpersist.FormatError),
    "unknown-codec": (
        b'"device":"cpu"',
        b'"device":"cpu","codec":"brotli"',
        devpersist.FormatError,
    ),
    "unknown-namespace": (b'"namespace":"numpy"', b'"namespace":"tf"', devpersist.FormatError),
    "unknown-object-key": (
        b'"builtins.dict"',
        b'"builtins.dict","trusted":["os.system"]',
        devpersist.FormatError,
    ),
    "bad-order": (b'"order":"C"', b'"order":"A"', devpersist.FormatError),
    "uppercase-checksum": (b"c0508cb22ba2467d", b"C0508CB22BA2467D", devpersist.FormatError),
    "globals-not-pairs": (b'"globals":[]', b'"globals":[["os"]]', devpersist.FormatError),
    "not-utf8": (b"dict['x']", b"dict['\xff']", devpersist.FormatError),
    "shape-times-itemsize": (b'"shape":[3]', b'"shape":[4]', devpersist.IntegrityError),
    "offset-hole": (b'"offset":128', b'"offset":192', devpersist.IntegrityError),
}


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=list(MANIFEST_CASES))
def test_manifest_rules(case):
    old, new, error = MANIFEST_CASES[case]
    data = tiny()
    bad = reseal(data, _edit(_split(data)[2], old, new))
    with pytest.raises(error) as excinfo:
        devpersist.loads(bad)
    assert type(excinfo.value) is error


@pytest.mark.parametrize(
    "raw", [b"\xef\xbb\xbf{}", b"[]", b"{} {}", b""], ids=["bom", "array", "two", "empty"]
)
def test_manifest_must_be_one_json_object(raw):
    data = tiny()
    with pytest.raises(devpersist.FormatError):
        devpersist.loads(reseal(data, raw))


def test_manifest_size_limit_is_checked_before_reading_it():
    data = bytearray(tiny())
    data[-32:-24] = struct.pack("<Q", _format.MAX_MANIFEST_BYTES + 1)
    with pytest.raises(devpersist.ResourceLimitError):
        devpersist.loads(bytes(data))


# --------------------------------------------------------------------------- info


class RecordingFile(io.RawIOBase):
    """A seekable binary file that records every byte range read from it."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.ranges: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + len(view)]
        view[: len(chunk)] = chunk
        if chunk:
            self.ranges.append((self._pos, self._pos + len(chunk)))
        self._pos += len(chunk)
        return len(chunk)


def test_info_reads_only_header_trailer_and_manifest():
    data = devpersist.dumps({"big": np.arange(1 << 17, dtype="<f8"), "small": np.arange(3)})
    offset, length, _ = _split(data)
    f = RecordingFile(data)
    meta = devpersist.info(f)
    assert meta["format_version"] == 2 and meta["file_size"] == len(data)
    assert f.ranges, "info read nothing?"
    for start, stop in f.ranges:
        assert stop <= 16 or start >= offset, (
            f"info read bytes {start}-{stop} of the graph or arrays"
        )
    assert sum(stop - start for start, stop in f.ranges) <= 16 + length + 40

    f = RecordingFile(data)  # the recorder does see array reads
    devpersist.load(f)
    assert sum(stop - start for start, stop in f.ranges) >= 8 << 17


def test_structured_padding_is_written_as_zeros():
    """Aligned structs have bytes no field covers: they must never carry memory to disk."""
    import devpersist

    dtype = np.dtype([("a", "u1"), ("b", "<f8")], align=True)  # 7 padding bytes per item
    garbage = np.frombuffer(bytes(range(1, 65)), dtype=dtype).copy()  # padding non-zero
    data = devpersist.dumps({"s": garbage})
    meta = devpersist.info(data)
    entry = meta["arrays"][0]
    assert entry["packed"]  # 64 bytes: in the pack, at its start
    start = meta["pack"]["offset"] + entry["offset"]
    raw = np.frombuffer(data, np.uint8, entry["length"], start).reshape(-1, 16)
    assert (raw[:, 1:8] == 0).all()
    out = devpersist.loads(data)["s"]
    assert (
        out.dtype == dtype
        and np.array_equal(out["a"], garbage["a"])
        and np.array_equal(out["b"], garbage["b"])
    )
