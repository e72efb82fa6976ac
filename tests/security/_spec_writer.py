"""An independent writer of devpersist containers, from docs/format.md alone.

It must not import devpersist: a hostile file written with the library's own writer
would share its mistakes. Only ``struct``, ``json`` and ``xxhash`` are used. Pickle
streams are written opcode by opcode (as bytes) by the helpers below, never by
``pickle.dumps``, so that they can say things pickle never would.

:func:`seal` lays out header, graph, blobs, manifest and trailer with the offsets,
padding and checksums the spec requires; :func:`unseal` reads them back (for the
structure-aware fuzzer, which mutates a manifest or a graph and seals again so the
mutation reaches the parser, the audit and the loader instead of the checksum test).
Both format versions: ``version=2`` packs the arrays of at most ``PACK_MAX`` bytes into
one region (64-byte aligned members, one checksum) and writes the arrays table as
columns (through the tests' re-sealer, :mod:`_container`, also written from the spec);
:func:`unseal` presents either version's arrays as rows.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import xxhash

try:
    import _container
except ModuleNotFoundError:  # run as a script (fuzz_long.py): tests/ is not on the path
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import _container

MAGIC = b"\x89DVP\r\n\x1a\n"
END_MAGIC = b"DVP1END\n"
ALIGN = 64
PACK_MAX = 65536


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def checksum(data: bytes) -> str:
    return f"xxh3_64:{xxhash.xxh3_64_intdigest(data):016x}"


@dataclass
class Blob:
    """One array: its manifest entry (without offset, length, checksum) and bytes."""

    data: bytes
    dtype: Any = "|u1"
    shape: list[int] | None = None
    order: str = "C"
    namespace: str = "numpy"
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        shape = [len(self.data)] if self.shape is None else self.shape
        return {
            "dtype": self.dtype,
            "shape": shape,
            "order": self.order,
            "namespace": self.namespace,
            "device": self.device,
            **self.extra,
        }


def _layout_v2(
    graph: bytes, entries: list[dict[str, Any]], datas: list[bytes]
) -> tuple[dict[str, Any], list[tuple[int, bytes]]]:
    """Version 2's sections: the manifest's graph, pack (if any) and rows (offsets,
    lengths, checksums set), and the (offset, bytes) pieces to write after the graph."""
    pos = align(16)
    sections: dict[str, Any] = {
        "graph": {"offset": pos, "length": len(graph), "checksum": checksum(graph)}
    }
    pos = align(pos + len(graph))
    rows: list[dict[str, Any]] = []
    pack = b""
    packed = [len(d) <= PACK_MAX and "codec" not in e for e, d in zip(entries, datas)]
    for entry, data, inside in zip(entries, datas, packed):
        row = {k: v for k, v in entry.items() if k not in ("packed", "checksum")}
        if inside:
            start = align(len(pack)) if pack else 0
            pack += bytes(start - len(pack)) + data
            row.update(offset=start, length=len(data), packed=True)
        rows.append(row)
    pieces: list[tuple[int, bytes]] = []
    if any(packed):
        sections["pack"] = {"offset": pos, "length": len(pack), "checksum": checksum(pack)}
        pieces.append((pos, pack))
        pos = align(pos + len(pack))
    for row, data, inside in zip(rows, datas, packed):
        if not inside:
            row.update(offset=pos, length=len(data), checksum=checksum(data))
            pieces.append((pos, data))
            pos = align(pos + len(data))
    sections["arrays"] = rows
    return sections, pieces


def manifest_for(
    graph: bytes,
    blobs: list[Blob],
    globals_: list[list[str]] | None = None,
    extra: dict[str, Any] | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """The manifest a correct writer would give, before ``extra`` overrides keys (for
    version 2, arrays as rows: :func:`seal` writes them as columns)."""
    if version == 2:
        sections, _ = _layout_v2(graph, [b.entry() for b in blobs], [b.data for b in blobs])
        manifest = {"format_version": 2, "alignment": ALIGN, "graph": sections["graph"]}
        if "pack" in sections:
            manifest["pack"] = sections["pack"]
        manifest.update(
            arrays=sections["arrays"],
            globals=sorted(globals_ or []),
            object={"type": "builtins.dict"},
        )
        manifest.update(extra or {})
        return manifest
    pos = align(16)
    graph_entry = {"offset": pos, "length": len(graph), "checksum": checksum(graph)}
    pos = align(pos + len(graph))
    arrays = []
    for blob in blobs:
        arrays.append(
            {
                **blob.entry(),
                "offset": pos,
                "length": len(blob.data),
                "checksum": checksum(blob.data),
            }
        )
        pos = align(pos + len(blob.data))
    manifest: dict[str, Any] = {
        "format_version": 1,
        "alignment": ALIGN,
        "graph": graph_entry,
        "arrays": arrays,
        "globals": sorted(globals_ or []),
        "object": {"type": "builtins.dict"},
    }
    manifest.update(extra or {})
    return manifest


def seal(
    graph: bytes,
    blobs: list[Blob] | None = None,
    globals_: list[list[str]] | None = None,
    *,
    extra: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    raw_manifest: bytes | None = None,
    version: int = 1,
) -> bytes:
    """A container around ``graph`` and ``blobs``; sections laid out by the spec.

    ``manifest`` replaces the computed manifest (offsets are then the caller's), and
    ``raw_manifest`` its bytes; the trailer always describes what is written, so that
    whatever they say reaches the JSON parser and the validation. With ``version=2``
    the blobs are laid out as version 2 does (pack, then the larger blobs) and rows in
    ``manifest["arrays"]`` are written as columns.
    """
    blobs = blobs or []
    out = bytearray(MAGIC + struct.pack("<II", version, 0))
    out += bytes(align(len(out)) - len(out))
    out += graph
    if version == 2:
        _, pieces = _layout_v2(graph, [b.entry() for b in blobs], [b.data for b in blobs])
        for pos, data in pieces:
            out += bytes(pos - len(out))
            out += data
    else:
        for blob in blobs:
            out += bytes(align(len(out)) - len(out))
            out += blob.data
    out += bytes(align(len(out)) - len(out))
    if raw_manifest is None:
        if manifest is None:
            manifest = manifest_for(graph, blobs, globals_, extra, version)
        raw_manifest = _encode(manifest, version)
    offset = len(out)
    out += raw_manifest
    out += struct.pack(
        "<QQQII8s",
        offset,
        len(raw_manifest),
        xxhash.xxh3_64_intdigest(raw_manifest),
        version,
        0,
        END_MAGIC,
    )
    return bytes(out)


def _encode(manifest: Any, version: int) -> bytes:
    """Compact JSON; version 2 rows become columns (rows a mutation broke stay a list,
    which the reader rejects as it should)."""
    if version == 2 and isinstance(manifest, dict) and isinstance(manifest.get("arrays"), list):
        try:
            manifest = {**manifest, "arrays": _container.to_columns(manifest["arrays"])}
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()


def unseal(data: bytes) -> tuple[dict[str, Any], bytes, list[bytes]]:
    """Manifest (arrays as rows), graph bytes and each array's bytes of a well-formed,
    uncompressed container of either version."""
    manifest = _container.manifest_of(data)
    g = manifest["graph"]
    assert "codec" not in g, "a compressed graph cannot be unsealed"
    graph = data[g["offset"] : g["offset"] + g["length"]]
    blobs = []
    for a in manifest["arrays"]:
        start = a["offset"] + (manifest["pack"]["offset"] if a.get("packed") else 0)
        blobs.append(data[start : start + a["length"]])
    return manifest, graph, blobs


def reseal(manifest: dict[str, Any], graph: bytes, blobs: list[bytes]) -> bytes:
    """Lay ``graph`` and ``blobs`` out again under ``manifest``'s other fields, with
    offsets, lengths and checksums recomputed: a mutation of any of them survives the
    container checks."""
    if manifest.get("format_version") == 2:
        entries = [dict(e) if isinstance(e, dict) else {} for e in manifest.get("arrays", [])]
        entries = entries[: len(blobs)]
        sections, _ = _layout_v2(graph, entries, blobs[: len(entries)])
        rest = {k: v for k, v in manifest.items() if k not in ("graph", "pack", "arrays")}
        head = {k: rest.pop(k) for k in ("format_version", "alignment") if k in rest}
        manifest = {**head, **sections, **rest}  # the writer's key order
        blob_list = [Blob(b, **_blob_fields(e)) for e, b in zip(entries, blobs)]
        return seal(graph, blob_list, manifest=manifest, version=2)
    pos = align(16)
    manifest = dict(manifest)
    manifest["graph"] = {"offset": pos, "length": len(graph), "checksum": checksum(graph)}
    pos = align(pos + len(graph))
    arrays = []
    for entry, data in zip(manifest.get("arrays", []), blobs):
        entry = dict(entry) if isinstance(entry, dict) else {}
        entry.update(offset=pos, length=len(data), checksum=checksum(data))
        arrays.append(entry)
        pos = align(pos + len(data))
    manifest["arrays"] = arrays
    return seal(graph, [Blob(b) for b in blobs], manifest=manifest)


def manifest_bytes(data: bytes) -> bytes:
    """The manifest's bytes, as the trailer places them."""
    return _container.split(data)[2]


def with_raw_manifest(data: bytes, raw: bytes) -> bytes:
    """``data`` with its manifest bytes replaced and the trailer made to match."""
    return _container.reseal(data, raw)


def _blob_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A row's fields as :class:`Blob` arguments (what decides packing: its codec)."""
    return {"extra": {"codec": entry["codec"]}} if "codec" in entry else {}


# --------------------------------------------------------------------------- pickle opcodes

PROTO5 = b"\x80\x05"
STOP = b"."
MARK = b"("
POP = b"0"
EMPTY_LIST = b"]"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
EMPTY_SET = b"\x8f"
FROZENSET = b"\x91"
ADDITEMS = b"\x90"
APPEND = b"a"
APPENDS = b"e"
SETITEM = b"s"
SETITEMS = b"u"
TUPLE = b"t"
LIST = b"l"
DICT = b"d"
REDUCE = b"R"
BUILD = b"b"
NEWOBJ = b"\x81"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
BINPERSID = b"Q"
NONE = b"N"


def text(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def integer(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def binfloat(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


def binbytes(value: bytes) -> bytes:
    if len(value) < 256:
        return b"C" + bytes([len(value)]) + value
    return b"B" + struct.pack("<I", len(value)) + value


def global_(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def global_op(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def put(index: int) -> bytes:
    return b"r" + struct.pack("<I", index) if index >= 256 else b"q" + bytes([index])


def long_put(index: int) -> bytes:
    return b"r" + struct.pack("<I", index)


def get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index) if index >= 256 else b"h" + bytes([index])


def pid(index: int) -> bytes:
    return integer(index) + BINPERSID


def stream(*parts: bytes) -> bytes:
    return PROTO5 + b"".join(parts) + STOP


def file_of(*parts: bytes, blobs: list[Blob] | None = None, globals_: Any = None) -> bytes:
    """A sealed file whose graph is ``stream(*parts)``; ``globals_`` as declared."""
    return seal(stream(*parts), blobs, globals_)


# --------------------------------------------------------------------------- declared globals


def names_of(graph: bytes) -> list[list[str]]:
    """The globals a stream names, as an attacker declares them in the manifest (so the
    file passes the consistency check and reaches the allowlist). Found by reading the
    opcodes (``pickletools.genops``), never by unpickling: a hostile stream may crash an
    unpickler (a deeply nested tuple as a dict key overflows the C stack when hashed).
    ``STACK_GLOBAL`` takes the last two strings pushed (directly or from the memo)."""
    import pickletools

    found: set[tuple[str, str]] = set()
    pushed: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(graph):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, qualname = arg.partition(" ")
                found.add((module, qualname))
            elif name == "STACK_GLOBAL" and len(pushed) >= 2:
                found.add((str(pushed[-2]), str(pushed[-1])))
            elif "UNICODE" in name or name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                pushed.append(arg)
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[-1] if pushed else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(arg))
            elif name in ("EXT1", "EXT2", "EXT4"):
                import copyreg

                if arg in copyreg._inverted_registry:  # type: ignore[attr-defined]
                    found.add(copyreg._inverted_registry[arg])  # type: ignore[attr-defined]
            else:
                pushed.append(None)
    except ValueError:  # a broken stream declares what was found so far
        pass
    return sorted([m, n] for m, n in found)


def hostile(*parts: bytes, blobs: list[Blob] | None = None) -> bytes:
    """A sealed file around ``stream(*parts)`` declaring exactly the globals it names."""
    graph = stream(*parts)
    return seal(graph, blobs, names_of(graph))
