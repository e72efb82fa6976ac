"""The manifest: its JSON, its schema, and the validation of every field the reader uses.

Place in the data flow: :class:`devpersist._format.Container` reads the manifest's bytes
between the trailer check and any other read, and hands them to :func:`parse_manifest`,
which returns the manifest with its arrays table as one row (a dict) per array, whatever
the version: version 1 stores rows, version 2 stores columns (:mod:`devpersist._columns`
validates those and builds the rows). Nothing is allocated from a length, read or
imported before the field that decides it is validated here.

The ``environment`` and ``config`` sections are validated by their owners
(:mod:`devpersist._environment`, :mod:`devpersist._config`), called by the
orchestration: this layer knows nothing of scikit-learn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import xxhash

from ._exceptions import FormatError, IntegrityError, ResourceLimitError, shown
from ._protocol import ALIGNMENT, HEADER, Trailer, align
from .arrays import dtype_from_descr, namespaces

if TYPE_CHECKING:
    import numpy as np

#: JSON objects and arrays (``{``, ``[``) in a manifest: at most one per this many bytes
#: (a real manifest has one per 20 bytes or more: a forest's is about 30), or this many.
MANIFEST_BYTES_PER_CONTAINER = 16
MIN_MANIFEST_CONTAINERS = 10_000


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise FormatError(f"duplicate key {shown(dup)} in the manifest")
    return result


def _reject_constant(name: str) -> None:
    raise FormatError(f"non-standard JSON constant {name} in the manifest")


def parse_json(raw: bytes | memoryview, trailer: Trailer) -> dict[str, Any]:
    """The manifest's bytes, checked against the trailer's checksum, as a JSON object
    (no duplicate keys, no constants, bounded nesting and count of containers)."""
    raw = bytes(raw)
    if xxhash.xxh3_64_intdigest(raw) != trailer.manifest_checksum:
        raise IntegrityError("manifest checksum mismatch: the file is corrupted")
    if raw[:1] != b"{" or raw[-1:] != b"}":
        raise FormatError("the manifest must be a JSON object with no surrounding whitespace")
    # JSON objects and arrays cost ~100 bytes of memory each for 2 bytes of text: count
    # them (brackets inside strings too: an over-estimate) before the parser builds them
    containers = raw.count(b"{") + raw.count(b"[")
    allowed = max(MIN_MANIFEST_CONTAINERS, len(raw) // MANIFEST_BYTES_PER_CONTAINER)
    if containers > allowed:
        raise ResourceLimitError(
            f"the manifest holds {containers} JSON objects and arrays, more than the "
            f"{allowed} its {len(raw)} bytes allow (limit MANIFEST_BYTES_PER_CONTAINER)"
        )
    try:
        manifest = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise FormatError("the manifest is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"the manifest is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ResourceLimitError(
            "the manifest is nested too deeply (limit: the JSON parser's recursion limit)"
        ) from exc
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise FormatError(f"the manifest holds an invalid value: {exc}") from exc
    if not isinstance(manifest, dict):
        raise FormatError("the manifest is not a JSON object")
    return manifest


# Keys of the manifest and of its entries. Unknown keys are rejected: a writer that adds
# one must bump the format version (see docs/format.md, "Changing the format").
MANIFEST_KEYS = {
    "format_version": int,
    "alignment": int,
    "graph": dict,
    "arrays": list,
    "globals": list,
    "object": dict,
    "environment": dict,
    "config": dict,
    "metadata": dict,  # the user's own JSON (dump's metadata=), shown, never interpreted
}
REQUIRED_KEYS = ("format_version", "alignment", "graph", "arrays", "globals")
GRAPH_KEYS = {"offset": int, "length": int, "checksum": str}
ARRAY_KEYS = {
    "offset": int,
    "length": int,
    "checksum": str,
    "dtype": (str, list),
    "shape": list,
    "order": str,
    "namespace": str,
    "device": str,
    "meta": dict,
    "path": str,
    "codec": str,
}
#: Per-array ``meta`` keys and their types (what handlers may record).
META_KEYS = {
    "writeable": bool,  # numpy: False for read-only arrays
    "dtype": str,  # the library's own dtype name when it differs (bfloat16)
    "requires_grad": bool,  # torch
    "parameter": bool,  # torch.nn.Parameter
    "cast": (str, list),  # precision option: the dtype to restore on load
    "precision": str,  # precision option: "float16" or "bfloat16"
    "usm_type": str,  # dpnp: the USM allocation type ("device", "shared", "host")
}
#: Compression codecs a reader may meet; ``length`` is then the compressed size.
CODECS = ("zstd", "lz4", "zlib", "lzma")
ARRAY_REQUIRED = ("offset", "length", "checksum", "dtype", "shape", "order", "namespace", "device")
CHECKSUM_RE = re.compile(r"xxh3_64:[0-9a-f]{16}\Z")
MAX_NDIM = 64
MAX_DIM = 2**48
#: One array's decoded size, and the most a codec may expand data (zstd on zeros
#: reaches about 30,000:1; a bomb reaches far more).
MAX_ARRAY_BYTES = 2**46
#: One array's element count, zero dimensions aside (0-byte ``V0`` elements included).
MAX_ELEMENTS = 2**46
#: ``meta.precision`` values and the dtype each is stored as.
PRECISIONS = {"float16": "<f2", "bfloat16": "<u2"}
MAX_RATIO = 100_000


def check_keys(where: str, obj: Any, spec: dict[str, Any], required: Iterable[str]) -> None:
    if not isinstance(obj, dict):
        raise FormatError(f"{where} is not a JSON object")
    for key, value in obj.items():
        if key not in spec:
            raise FormatError(f"unknown key {shown(key)} in {where}")
        expected = spec[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise FormatError(f"{where}[{key!r}] has the wrong type")
    for key in required:
        if key not in obj:
            raise FormatError(f"{where} lacks the key {key!r}")


def check_top(manifest: dict[str, Any], trailer: Trailer, keys: dict[str, Any]) -> None:
    """The keys every version shares: types, version, alignment, object."""
    check_keys("the manifest", manifest, keys, REQUIRED_KEYS)
    if "object" in manifest:
        check_keys("the manifest's object", manifest["object"], {"type": str}, ("type",))
    if manifest["format_version"] != trailer.version:
        raise IntegrityError("format version in the manifest differs from the trailer")
    if manifest["alignment"] != ALIGNMENT:
        raise FormatError(f"alignment {manifest['alignment']} is not {ALIGNMENT}")


def check_globals(manifest: dict[str, Any]) -> None:
    for item in manifest["globals"]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise FormatError("the manifest's globals must be [module, name] pairs")


def check_checksum(name: str, value: Any) -> None:
    if not isinstance(value, str) or not CHECKSUM_RE.match(value):
        raise FormatError(f"{name}: malformed checksum {shown(value)}")


def check_chain(name: str, entry: dict[str, Any], expected: int) -> int:
    """A section starts where the previous one's padding ends; returns its aligned end."""
    if entry["offset"] != expected or entry["length"] < 0:
        raise IntegrityError(
            f"{name} starts at {entry['offset']}, expected {expected}: sections "
            "must follow each other in order, without holes or overlaps"
        )
    return align(entry["offset"] + entry["length"])


def check_manifest_start(expected: int, trailer: Trailer) -> None:
    if expected != trailer.manifest_offset:
        raise IntegrityError(
            f"the last section ends before {expected} but the manifest starts at "
            f"{trailer.manifest_offset}"
        )


def validate_v1(manifest: dict[str, Any], trailer: Trailer) -> None:
    """Check every field of a version 1 manifest, before anything is read or allocated."""
    check_top(manifest, trailer, MANIFEST_KEYS)
    graph = manifest["graph"]
    check_keys("the graph section", graph, GRAPH_KEYS, GRAPH_KEYS)
    expected = align(HEADER.size)
    ranges = [("the graph", graph)] + [
        (f"array {i}", entry) for i, entry in enumerate(manifest["arrays"])
    ]
    for name, entry in ranges:
        if name != "the graph":
            check_keys(f"the manifest's {name}", entry, ARRAY_KEYS, ARRAY_REQUIRED)
            validate_array_entry(name, entry)
        check_checksum(name, entry["checksum"])
        expected = check_chain(name, entry, expected)
    check_manifest_start(expected, trailer)
    check_globals(manifest)


def validate_meta(name: str, meta: dict[str, Any], dtype: np.dtype[Any]) -> None:
    """``precision=`` records: a known precision, stored as it says, and a floating
    dtype wider than 2 bytes to restore (what the writer records, nothing else)."""
    if ("precision" in meta) != ("cast" in meta):
        raise FormatError(f"{name}: meta 'precision' and 'cast' go together")
    if "precision" not in meta:
        return
    precision = meta["precision"]
    if precision not in PRECISIONS:
        raise FormatError(f"{name}: unknown precision {shown(precision)}")
    if dtype.str != PRECISIONS[precision] or "dtype" in meta:
        raise FormatError(f"{name}: precision {precision} is stored as {PRECISIONS[precision]}")
    cast = dtype_from_descr(meta["cast"], name)
    if cast.kind != "f" or cast.itemsize <= 2:
        raise FormatError(f"{name}: precision= only applies to floating dtypes wider than 2 bytes")


def validate_array_entry(name: str, entry: dict[str, Any]) -> None:
    if "meta" in entry:
        check_keys(f"{name}'s meta", entry["meta"], META_KEYS, ())
    codec = entry.get("codec")
    if codec is not None and codec not in CODECS:
        raise FormatError(f"{name}: unknown codec {shown(codec)}")
    if entry["namespace"] not in namespaces():
        raise FormatError(f"{name}: unknown array namespace {shown(entry['namespace'])}")
    if len(entry["device"]) > 256:
        raise FormatError(f"{name}: device name too long")
    shape = entry["shape"]
    if len(shape) > MAX_NDIM or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_DIM for n in shape
    ):
        raise FormatError(f"{name}: invalid shape {shown(shape)}")
    if entry["order"] not in ("C", "F"):
        raise FormatError(f"{name}: invalid order {shown(entry['order'])}")
    dtype = dtype_from_descr(entry["dtype"], name)
    if "meta" in entry:
        validate_meta(name, entry["meta"], dtype)
    # Every factor is checked as it comes, zeros aside, so that no product grows past
    # the limits (numpy refuses a shape whose non-zero dimensions overflow its index
    # type even when another dimension is 0, and loads 0-byte elements in any number).
    nonzero = 1
    for n in shape:
        if n:
            nonzero *= n
            if nonzero > MAX_ELEMENTS:
                raise ResourceLimitError(
                    f"{name}: shape {tuple(shape)} has more than {MAX_ELEMENTS} elements "
                    "(limit MAX_ELEMENTS, zero dimensions aside)"
                )
    count = nonzero if all(shape) else 0
    size = nonzero * max(dtype.itemsize, 1)
    if size > MAX_ARRAY_BYTES:
        raise ResourceLimitError(
            f"{name}: {size} bytes exceeds the {MAX_ARRAY_BYTES}-byte limit (MAX_ARRAY_BYTES)"
        )
    size = count * dtype.itemsize
    if codec is not None and size > max(2**20, MAX_RATIO * entry["length"]):
        raise ResourceLimitError(
            f"{name}: {entry['length']} compressed bytes cannot honestly expand to {size}"
        )
    if codec is None and size != entry["length"]:
        raise IntegrityError(
            f"{name}: shape {tuple(shape)} of {dtype} needs {count * dtype.itemsize} "
            f"bytes but {entry['length']} are declared"
        )
