"""The tests' one manifest re-sealer: read and rewrite a container's manifest, v1 or v2.

Written from docs/format.md, not from devpersist's writer (nothing here imports
devpersist), so that a test that edits a file states what the format is, independently
of the code under test. Used by tests/_hostile.py, tests/_repack.py,
tests/security/_fuzz.py and the format tests.

A version 2 manifest stores its arrays as columns; :func:`edit_manifest` presents them
as rows (``manifest["arrays"][i]``, one dict per array, as in version 1: a packed
array's row has ``"packed": True`` and no ``checksum``) and encodes the rows back into
columns after the edit, so the same edit works on files of both versions.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import xxhash

TRAILER = struct.Struct("<QQQII8s")
END_MAGIC = b"DVP1END\n"
COLUMNS = ("dtypes", "dtype", "shape", "order", "places", "place", "offset", "length", "checksum")
OPTIONAL = ("codec", "meta", "path")


def version_of(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, 8)[0])


def split(data: bytes) -> tuple[int, int, bytes]:
    """Manifest offset, length and bytes, from the trailer."""
    offset, length = struct.unpack_from("<QQ", data, len(data) - TRAILER.size)
    return offset, length, data[offset : offset + length]


def encode(manifest: Any) -> bytes:
    """Compact JSON, as the writer encodes it."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def reseal(
    data: bytes, raw: bytes, *, version: int | None = None, checksum: int | None = None
) -> bytes:
    """``data`` with its manifest's bytes replaced; the trailer's length and checksum
    fixed (``checksum``/``version`` override what goes into the trailer)."""
    offset, _, _ = split(data)
    trailer_version = struct.unpack_from("<I", data, len(data) - 16)[0]
    digest = xxhash.xxh3_64_intdigest(raw) if checksum is None else checksum
    tail = TRAILER.pack(
        offset, len(raw), digest, trailer_version if version is None else version, 0, END_MAGIC
    )
    return data[:offset] + raw + tail


def to_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """A version 2 arrays table as one dict per array."""
    rows = []
    for i, d in enumerate(table["dtype"]):
        namespace, device = table["places"][table["place"][i]]
        row: dict[str, Any] = {
            "dtype": table["dtypes"][d],
            "shape": table["shape"][i],
            "order": table["order"][i],
            "namespace": namespace,
            "device": device,
        }
        for name in OPTIONAL:
            if name in table and table[name][i] is not None:
                row[name] = table[name][i]
        row["offset"], row["length"] = table["offset"][i], table["length"][i]
        if table["checksum"][i] is None:
            row["packed"] = True
        else:
            row["checksum"] = table["checksum"][i]
        rows.append(row)
    return rows


def to_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows back to a version 2 arrays table (distinct dtypes and places, first-seen
    order, as the writer makes them). Keys a row should not have are dropped."""
    dtypes: list[Any] = []
    places: list[list[str]] = []
    table: dict[str, Any] = {name: [] for name in COLUMNS if name != "order"}
    optional: dict[str, list[Any]] = {name: [] for name in OPTIONAL}
    order = ""
    for row in rows:
        if row["dtype"] not in dtypes:
            dtypes.append(row["dtype"])
        place = [row["namespace"], row["device"]]
        if place not in places:
            places.append(place)
        table["dtype"].append(dtypes.index(row["dtype"]))
        table["place"].append(places.index(place))
        table["shape"].append(row["shape"])
        order += row["order"]
        table["offset"].append(row["offset"])
        table["length"].append(row["length"])
        table["checksum"].append(None if row.get("packed") else row.get("checksum"))
        for name, column in optional.items():
            column.append(row.get(name))
    result = {
        "dtypes": dtypes,
        "dtype": table["dtype"],
        "shape": table["shape"],
        "order": order,
        "places": places,
        "place": table["place"],
        "offset": table["offset"],
        "length": table["length"],
        "checksum": table["checksum"],
    }
    for name, column in optional.items():
        if any(value is not None for value in column):
            result[name] = column
    return result


def manifest_of(data: bytes) -> dict[str, Any]:
    """The manifest as stored, with a version 2 arrays table presented as rows."""
    manifest: dict[str, Any] = json.loads(split(data)[2])
    if version_of(data) >= 2 and isinstance(manifest.get("arrays"), dict):
        manifest["arrays"] = to_rows(manifest["arrays"])
    return manifest


def encode_manifest(manifest: dict[str, Any], version: int) -> bytes:
    """Rows back to columns for version 2, then compact JSON."""
    if version >= 2 and isinstance(manifest.get("arrays"), list):
        manifest = {**manifest, "arrays": to_columns(manifest["arrays"])}
    return encode(manifest)


def edit_manifest(data: bytes, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """Apply ``edit`` to the manifest (rows in every version; it may return a new
    manifest) and re-seal the file (checksum and trailer)."""
    manifest = manifest_of(data)
    result = edit(manifest)
    manifest = manifest if result is None else result
    return reseal(data, encode_manifest(manifest, version_of(data)))
