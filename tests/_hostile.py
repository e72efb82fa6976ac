"""Builders of hostile devpersist files, for tests/test_security.py.

An attacker who wants a payload to reach the loader's audit must first get past the
container checks, so most builders here write a *well-formed* container around a hostile
pickle stream with :func:`devpersist._format.write_container`, and declare the true list
of globals the stream names (what an attacker would do to pass the consistency check).
That list is computed by :class:`_Recorder`, an unpickler written here, independently of
devpersist's own audit: it records every name and returns an inert stand-in, so building
a hostile file never imports or calls anything it names.

Other helpers edit a valid file at the byte level: replace the manifest (re-packing the
trailer's length and checksum so the edit reaches JSON parsing), edit an array's bytes
(recomputing its checksum, or the pack's for a packed array), or rewrite header and
trailer fields. Manifests are read and re-sealed by :mod:`_container` (v1 and v2: a
version 2 arrays table is presented as rows, one dict per array, and written back as
columns).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import _container
import numpy as np
import xxhash

from devpersist import _format
from devpersist._format import HEADER, TRAILER, BlobSource, checksum_text
from devpersist.arrays import dtype_from_descr, dtype_to_descr

# --------------------------------------------------------------------------- opcodes

PROTO5 = b"\x80\x05"
STOP = b"."
MARK = b"("
POP = b"0"
POP_MARK = b"1"
NONE = b"N"
EMPTY_LIST = b"]"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
APPEND = b"a"
APPENDS = b"e"
SETITEM = b"s"
SETITEMS = b"u"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
REDUCE = b"R"
BUILD = b"b"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"
OBJ = b"o"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"


def text(value: str) -> bytes:
    """Push a str (SHORT_BINUNICODE, or BINUNICODE when long)."""
    raw = value.encode("utf-8")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def binbytes(value: bytes) -> bytes:
    if len(value) < 256:
        return b"C" + bytes([len(value)]) + value
    return b"B" + struct.pack("<I", len(value)) + value


def integer(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def stack_global(module: str, name: str) -> bytes:
    """The protocol 4+ way to name a global: two strings, then STACK_GLOBAL."""
    return text(module) + text(name) + STACK_GLOBAL


def global_op(module: str, name: str) -> bytes:
    """The protocol 0 way: GLOBAL with newline-terminated names."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` with REDUCE; ``func`` and each argument are opcode fragments."""
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def get(index: int) -> bytes:
    return b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)


def stream(*parts: bytes) -> bytes:
    """A complete protocol 5 stream: PROTO, the parts, STOP."""
    return PROTO5 + b"".join(parts) + STOP


# --------------------------------------------------------------------------- globals


class _Inert:
    """What the recorder hands out for every global: accepts anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _Recorder(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.names: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.names.add((module, name))
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def true_globals(graph: bytes) -> list[list[str]]:
    """Every (module, name) the stream names, as the manifest lists them (sorted pairs).

    Streams that break midway (truncated, invalid) report the names met before the break.
    """
    recorder = _Recorder(graph)
    try:
        recorder.load()
    except Exception:
        pass
    return sorted([list(n) for n in recorder.names])


# --------------------------------------------------------------------------- containers


def numpy_blob(arr: np.ndarray) -> BlobSource:
    arr = np.ascontiguousarray(arr)
    meta = {
        "dtype": dtype_to_descr(arr.dtype),
        "shape": list(arr.shape),
        "order": "C",
        "namespace": "numpy",
        "device": "cpu",
    }
    return BlobSource(meta, arr.nbytes, [arr.tobytes()])


def raw_blob(meta: dict[str, Any], data: bytes) -> BlobSource:
    full = {"order": "C", "namespace": "numpy", "device": "cpu", **meta}
    return BlobSource(full, len(data), [data] if data else [])


#: The format version :func:`container` writes by default. 1: the cases of
#: tests/test_security.py state facts of version 1 (a header claiming version 2 was
#: "newer", an unknown key in an array's object...); version 2's own hostile inputs are
#: in tests/security/test_manifest.py and tests/test_format_v2.py.
VERSION = 1


def container(
    graph: bytes,
    arrays: Sequence[np.ndarray | BlobSource] = (),
    *,
    globals_: Iterable[Sequence[str]] | None = None,
    extra: dict[str, Any] | None = None,
    version: int | None = None,
) -> bytes:
    """A well-formed container around ``graph``, of format ``version`` (default
    :data:`VERSION`).

    ``globals_`` defaults to the true list; pass another one to lie.
    """
    blobs = [a if isinstance(a, BlobSource) else numpy_blob(a) for a in arrays]
    listed = true_globals(graph) if globals_ is None else sorted([list(n) for n in globals_])
    metadata: dict[str, Any] = {"globals": listed}
    if extra:
        metadata.update(extra)
    buf = io.BytesIO()
    _format.write_container(
        buf, graph, blobs, metadata, version=VERSION if version is None else version
    )
    return buf.getvalue()


# --------------------------------------------------------------------------- surgery


@dataclass
class Parsed:
    """A container cut at its declared boundaries, without any validation."""

    data: bytes
    manifest_offset: int
    manifest_length: int
    manifest_checksum: int
    version: int
    reserved: int
    end: bytes

    @property
    def manifest_raw(self) -> bytes:
        return self.data[self.manifest_offset : self.manifest_offset + self.manifest_length]

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest, with a version 2 arrays table as rows."""
        return _container.manifest_of(self.data)

    @property
    def graph(self) -> bytes:
        entry = self.manifest["graph"]
        return self.data[entry["offset"] : entry["offset"] + entry["length"]]

    def array_start(self, index: int, manifest: dict[str, Any] | None = None) -> int:
        """Where array ``index``'s bytes start in the file (a packed one's: in the
        pack, which must be stored uncompressed)."""
        manifest = self.manifest if manifest is None else manifest
        entry = manifest["arrays"][index]
        if entry.get("packed"):
            assert "codec" not in manifest["pack"], "a compressed pack has no file offsets"
            return int(manifest["pack"]["offset"] + entry["offset"])
        return int(entry["offset"])

    def array_bytes(self, index: int) -> bytes:
        start = self.array_start(index)
        return self.data[start : start + self.manifest["arrays"][index]["length"]]


def parse(data: bytes) -> Parsed:
    offset, length, digest, version, reserved, end = TRAILER.unpack(data[-TRAILER.size :])
    return Parsed(bytes(data), offset, length, digest, version, reserved, end)


def encode_manifest(manifest: Any, version: int = 1) -> bytes:
    """Compact JSON; for ``version`` 2, an arrays table given as rows becomes columns."""
    if isinstance(manifest, dict):
        return _container.encode_manifest(manifest, version)
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def with_manifest(
    data: bytes,
    manifest: Any = None,
    *,
    raw: bytes | None = None,
    fix_checksum: bool = True,
) -> bytes:
    """Replace the manifest (a JSON value, or ``raw`` bytes) and re-pack the trailer.

    The manifest keeps its offset; the trailer gets the new length and, unless
    ``fix_checksum`` is False, the new xxh3 checksum, so the edit reaches JSON parsing.
    """
    p = parse(data)
    body = encode_manifest(manifest, _container.version_of(p.data)) if raw is None else raw
    digest = xxhash.xxh3_64_intdigest(body) if fix_checksum else p.manifest_checksum
    trailer = TRAILER.pack(p.manifest_offset, len(body), digest, p.version, p.reserved, p.end)
    return p.data[: p.manifest_offset] + body + trailer


def edit_manifest(data: bytes, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """Apply ``edit`` to a copy of the manifest (in place, or return a new value)."""
    manifest = parse(data).manifest
    result = edit(manifest)
    return with_manifest(data, manifest if result is None else result)


def with_trailer(data: bytes, **fields: Any) -> bytes:
    """Rewrite trailer fields: offset, length, checksum, version, reserved, end."""
    p = parse(data)
    values = {
        "offset": p.manifest_offset,
        "length": p.manifest_length,
        "checksum": p.manifest_checksum,
        "version": p.version,
        "reserved": p.reserved,
        "end": p.end,
    }
    values.update(fields)
    trailer = TRAILER.pack(
        values["offset"],
        values["length"],
        values["checksum"],
        values["version"],
        values["reserved"],
        values["end"],
    )
    return p.data[: -TRAILER.size] + trailer


def with_header(
    data: bytes, *, magic: bytes | None = None, version: int | None = None, flags: int | None = None
) -> bytes:
    old_magic, old_version, old_flags = HEADER.unpack(data[: HEADER.size])
    header = HEADER.pack(
        old_magic if magic is None else magic,
        old_version if version is None else version,
        old_flags if flags is None else flags,
    )
    return header + data[HEADER.size :]


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def array_index(data: bytes, predicate: Callable[[dict[str, Any]], bool]) -> int:
    for i, entry in enumerate(parse(data).manifest["arrays"]):
        if predicate(entry):
            return i
    raise LookupError("no array entry matches")


def edit_array(data: bytes, index: int, edit: Callable[[np.ndarray], None]) -> bytes:
    """Edit array ``index``'s stored values in place (same size) and fix its checksum.

    ``edit`` gets a writable numpy copy of the stored values, with the stored dtype and
    shape. Only the array's bytes, its manifest checksum and the trailer change.
    """
    p = parse(data)
    manifest = p.manifest
    entry = manifest["arrays"][index]
    dtype = dtype_from_descr(entry["dtype"])
    values = np.frombuffer(p.array_bytes(index), dtype=dtype).copy()
    values = values.reshape(entry["shape"], order=entry["order"])
    edit(values)
    new = np.asarray(values, order=entry["order"]).tobytes(order=entry["order"])
    assert len(new) == entry["length"], "array edits must keep the size"
    patched = patch(p.data, p.array_start(index, manifest), new)
    if entry.get("packed"):  # one checksum covers the pack
        pack = manifest["pack"]
        stored = patched[pack["offset"] : pack["offset"] + pack["length"]]
        pack["checksum"] = checksum_text(xxhash.xxh3_64_intdigest(stored))
    else:
        entry["checksum"] = checksum_text(xxhash.xxh3_64_intdigest(new))
    return with_manifest(patched, manifest)


def with_graph(data: bytes, graph: bytes) -> bytes:
    """Rebuild ``data`` around another graph: same arrays and metadata, true globals."""
    p = parse(data)
    manifest = p.manifest
    blobs = []
    for i, entry in enumerate(manifest["arrays"]):
        meta = {
            k: v for k, v in entry.items() if k not in ("offset", "length", "checksum", "packed")
        }
        blobs.append(BlobSource(meta, entry["length"], [p.array_bytes(i)]))
    metadata = {
        k: v
        for k, v in manifest.items()
        if k not in ("format_version", "alignment", "graph", "pack", "arrays", "globals")
    }
    metadata["globals"] = true_globals(graph)
    buf = io.BytesIO()
    _format.write_container(buf, graph, blobs, metadata, version=p.version)
    return buf.getvalue()


# --------------------------------------------------------------------------- payloads


def shell(command: str) -> bytes:
    """``os.system(command)`` as a stream fragment."""
    return call(stack_global("os", "system"), text(command))


def nested_lists(levels: int, width: int) -> bytes:
    """Memo expansion ("billion laughs"): list k holds ``width`` references to list k-1.

    The fragment leaves only the outermost list on the stack, ``width ** levels`` leaves
    deep, from ``~3 * width * levels`` bytes.
    """
    out = EMPTY_LIST + MEMOIZE + POP  # memo 0: the innermost, empty list
    for k in range(levels):
        out += EMPTY_LIST + MEMOIZE + MARK + get(k) * width + APPENDS + POP
    return out + get(levels)


def deep_lists(depth: int) -> bytes:
    """``depth`` lists nested in one another: [[[...]]] (no recursion needed to build)."""
    return EMPTY_LIST * depth + APPEND * (depth - 1)


def deep_tuples(depth: int) -> bytes:
    return MARK * depth + NONE + TUPLE * depth


def deep_dicts(depth: int) -> bytes:
    # {"k": {"k": ...}}: push dict, key, repeat; then SETITEM from the inside out
    return (EMPTY_DICT + text("k")) * depth + NONE + SETITEM * depth


def deep_calls(module: str, name: str, depth: int) -> bytes:
    """``f(f(f(...f(None)...)))`` with ``f`` memoized once."""
    return (
        stack_global(module, name)
        + MEMOIZE
        + POP
        + (get(0) + MARK) * depth
        + NONE
        + (TUPLE + REDUCE) * depth
    )


def chain_behind_shared_root(depth: int) -> bytes:
    """A chain ``depth`` lists deep, reached through a root that also holds every link.

    Breadth-first from the root every list is one level down, yet the chain itself
    (``root[0][0][0]...``) nests ``depth`` levels.
    """
    out = b""
    for k in range(depth):
        out += EMPTY_LIST + b"r" + struct.pack("<I", k) + POP
    for k in range(depth - 1):
        out += get(k) + get(k + 1) + APPEND + POP
    out += EMPTY_LIST + MARK + b"".join(get(k) for k in range(depth)) + APPENDS
    return out


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]
